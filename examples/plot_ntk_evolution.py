"""
The tangent kernel at initialisation and after training
========================================================

Jacot, Gabriel & Hongler's Figure 1 for a two-layer relu network under NTK scaling: the kernel
Theta(x_0, x(gamma)) between x_0 = (1, 0) and the points x(gamma) of the unit circle, for 10 initialisations at
widths 500 and 10 000, at initialisation and after 200 gradient steps on the target x_1 x_2 at four points of the
circle. The kernels scatter around the analytic limit by O(m^-1/2) and barely move during training at the larger
width. Set ``MEANFIELD_QUICK=1`` for the quick sizes (widths 200 and 4000).
"""

# %%
# Run the figure (its runs go through the run pipeline into ``figures/runs/ntk_evolution``), print its claims.
import json
import os

from meanfield.figures import make, ntk_evolution

quick = os.environ.get("MEANFIELD_QUICK") == "1"
(record,) = make(["ntk_evolution"], quick=quick, out="figures", progress=False)
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.4g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# Draw it again from the numbers of its JSON.
with open("figures/ntk_evolution.json") as fh:
    saved = json.load(fh)
fig = ntk_evolution.plot(saved["numbers"], saved["params"])
