"""
Propagation of chaos against the mean-field PDE
================================================

m particles trained by their own gradient flow against the density that the grid solver of the mean-field PDE
(:mod:`meanfield.pde`) reaches at the same time T: the risk difference and the Wasserstein distance fall like
:math:`m^{-1/2}`, except the plane W2, whose two-dimensional empirical rate and grid floor make it fall slower.
Set ``MEANFIELD_QUICK=1`` for a quick run with small sizes.
"""

# %%
# The numbers: every width, seed, risk difference and W2, with the fitted slopes and their standard errors.
import json
import os

from meanfield.figures import chaos_pde, show

quick = os.environ.get("MEANFIELD_QUICK") == "1"
numbers = chaos_pde.compute(quick=quick)
for key in ("plane", "radial"):
    res = numbers[key]
    w2 = f", W2 slope {res['slope_w2']:.3f} +/- {res['stderr_w2']:.3f}" if res.get("w2") else ""
    print(f"{key}: risk slope {res['slope_risk']:.3f} +/- {res['stderr_risk']:.3f}{w2} (theory -0.5)")

# %%
# The figure, and the numbers beside it.
chaos_pde.plot(numbers, "pde_chaos.png")
show("pde_chaos.png")
with open("pde_chaos.json", "w") as fh:
    json.dump(numbers, fh, indent=1)
