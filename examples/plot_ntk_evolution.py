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
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))
(record,) = make(["ntk_evolution"], quick=QUICK, out=OUT, reuse=True)
# a reused figure takes no time here: say how long it took to make
print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# The figure, as saved in OUT with its PDF and the JSON of its numbers.
show(OUT / "ntk_evolution.png")
