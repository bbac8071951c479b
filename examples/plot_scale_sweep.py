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
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["scale_sweep"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "scale_sweep.png")
