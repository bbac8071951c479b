"""
Test loss against the scale of the initialisation
=================================================

Chizat, Oyallon & Bach's laziness knob: a two-layer relu network under mean-field scaling, initialised with
a_j, w_j ~ N(0, tau^2), learns a three-neuron relu teacher in d dimensions. Because the relu is 2-homogeneous,
f(tau theta) = tau^2 f(theta): a large tau fits the data by a tiny relative motion of the particles (lazy
training, the network follows its linearisation), a small tau makes the particles travel and align with the
teacher (rich training). The figure sweeps tau on Dask (several seeds each) and plots the test loss at the end of
training and the best during training, the test loss of the linearised (tangent) model from the same initial
particles, and the relative displacement of the particles: the rich end generalises far better, the lazy end
coincides with the linearised model.

Run ``python examples/plot_scale_sweep.py`` for the full size (about 8 minutes of one core), or with
``MEANFIELD_QUICK=1`` for the quick one; the figure, its PDF and a JSON of every number go to ``figures/``.
"""

# %%
# The sweep runs on a local Dask cluster whose worker processes re-import this script: everything that runs
# sits under the ``__main__`` guard.
import json
import os

from meanfield.figures import make
from meanfield.figures.scale_sweep import plot

QUICK = os.environ.get("MEANFIELD_QUICK") == "1"


def main():
    """Make the figure (quick or full), print its claims, and draw it again from its JSON."""
    (record,) = make(["scale_sweep"], quick=QUICK, out="figures", progress=False)
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.4g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    with open(os.path.join("figures", "scale_sweep.json")) as fh:
        saved = json.load(fh)
    return plot(saved["numbers"], saved["params"])  # left open: sphinx-gallery captures it


if __name__ == "__main__":
    fig = main()
