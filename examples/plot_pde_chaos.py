"""
Propagation of chaos against the mean-field PDE
================================================

m particles trained by their own gradient flow against the density that the grid solver of the mean-field PDE
(:mod:`meanfield.pde`) reaches at the same time T. The risk difference, the coupling distance to the nonlinear
particles (the same initial points moved by the PDE's own field) and the one-dimensional W2 (radial; the plane's
marginals) fall like :math:`m^{-1/2}`; the plane's two-dimensional W2 has the slower rate of a 2-D empirical
measure, :math:`\\sqrt{\\log m / m}`, and is shown beside it. Set ``MEANFIELD_QUICK=1`` for a quick run with
small sizes.
"""

# %%
# The numbers: every width, seed and distance, with the fitted slopes, their standard errors and the
# deterministic biases (the grid's error of R(mu_T) against a Gauss-rule particle reference).
import json
import os

from meanfield.figures import chaos_pde, show

quick = os.environ.get("MEANFIELD_QUICK") == "1"
numbers = chaos_pde.compute(quick=quick)
for key in ("plane", "radial"):
    res = numbers[key]
    slopes = ", ".join(f"{k[6:]} {res[k]:.3f} +/- {res['stderr_' + k[6:]]:.3f}" for k in res if k.startswith("slope_"))
    print(f"{key}: {slopes}; grid bias of the risk {res['grid_bias']:.1e}, "
          f"r.m.s. risk difference at m = {res['sizes'][-1]}: {res['rms_risk'][-1]:.1e}")
print(f"plane 2-D W2: theory sqrt(log m / m), local slope {numbers['plane']['theory_slope_w2']:.3f}")

# %%
# The figure, and the numbers beside it.
chaos_pde.plot(numbers, "pde_chaos.png")
show("pde_chaos.png")
with open("pde_chaos.json", "w") as fh:
    json.dump(numbers, fh, indent=1)
