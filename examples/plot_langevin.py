"""
Mean-field Langevin dynamics and its Gibbs measure
==================================================

Noisy gradient descent with weight decay, theta <- theta - dt (grad V + lambda theta) + sqrt(2 tau dt) xi, on a
mean-field network in the plane theta = (a, w) (d = 1, erf): the particle measure is the Wasserstein gradient
flow of the free energy F = R + lambda/2 E|theta|^2 - tau H, which decreases to a plateau, and the particles
settle in the self-consistent Gibbs measure exp(-(V(theta; mu) + lambda |theta|^2 / 2) / tau) / Z, computed
here on a grid (Mei, Montanari & Nguyen 2018; Chizat 2022; Nitanda, Wu & Suzuki 2022). The entropy of the
particles is a Kozachenko-Leonenko nearest-neighbour estimate.

It is figure 9 of ``meanfield figures`` (configuration ``examples/configs/figures/langevin.toml``); set
``MEANFIELD_QUICK=1`` for the small sizes of the test suite.
"""

# %%
# Run the figure (one run per temperature, the Gibbs fixed points, the distances), then draw it from its JSON.
import json
import os
from pathlib import Path

from meanfield.figures import langevin, make

quick = os.environ.get("MEANFIELD_QUICK") == "1"
(record,) = make(["langevin"], quick=quick, out="figures", progress=False)
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.4g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does NOT reproduce'})")

# %%
# The figure, re-drawn from the numbers in figures/langevin.json.
saved = json.loads(Path("figures/langevin.json").read_text())
fig = langevin.plot(saved["numbers"], saved["params"])
