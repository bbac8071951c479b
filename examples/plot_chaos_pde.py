"""
The mean-field limit against the grid PDE
=========================================

m i.i.d. particles moved by their own gradient flow against the density that the grid solver of the mean-field
PDE (``meanfield.pde``) reaches from the same initial law, at a fixed time T, in two settings: the plane
theta = (a, w) (d = 1, erf, 8 training points) and the radial reduction ``s = |w| / sqrt(d)`` (d = 2, softplus). Three
distances per width m, over many seeds: the risk difference R(mu^m_T) - R(mu_T), the coupling distance D_m to
the nonlinear particles (the same initial points moved by the PDE's own field: Sznitman's synchronous
coupling) and the Wasserstein distance W2(mu^m_T, mu_T). All three fall like m^-1/2 except the plane's 2-D W2,
which has the slower rate sqrt(log m / m) of a 2-D empirical measure (Ledoux 2017) and is drawn beside it.

It is figure ``chaos_pde`` of ``meanfield figures`` (configuration ``examples/configs/figures/chaos_pde.toml``;
docs/conventions.md states the theory of each distance); set ``MEANFIELD_QUICK=1`` for the small sizes of the
test suite.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":
    (record,) = make(["chaos_pde"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "chaos_pde.png")
