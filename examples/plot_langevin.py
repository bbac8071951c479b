"""
Mean-field Langevin dynamics and its Gibbs measure
==================================================

Noisy gradient descent with weight decay, theta <- theta - dt (grad V + lambda theta) + sqrt(2 tau dt) xi, on a
mean-field network in the plane theta = (a, w) (d = 1, erf): the particle measure is the Wasserstein gradient
flow of the free energy F = R + lambda/2 E‖theta‖^2 - tau H, which decreases to a plateau, and the particles
settle in the self-consistent Gibbs measure exp(-(V(theta; mu) + lambda ‖theta‖^2 / 2) / tau) / Z, computed
here on a grid (Mei, Montanari & Nguyen 2018; Chizat 2022; Nitanda, Wu & Suzuki 2022). The entropy of the
particles is a Kozachenko-Leonenko nearest-neighbour estimate.

It is figure 9 of ``meanfield figures`` (configuration ``examples/configs/figures/langevin.toml``); set
``MEANFIELD_QUICK=1`` for the small sizes of the test suite.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["langevin"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "langevin.png")
