"""
The mean-field limit: propagation of chaos
==========================================

m particles started i.i.d. and moved by the gradient flow of the exact population risk (Gaussian inputs, a relu
teacher of two neurons, mean-field scaling): the only randomness is the initial draw, and as m grows the risk
curve t -> R(mu^m_t) of every draw approaches one deterministic curve, the risk of the mean-field limit
(Mei, Montanari & Nguyen 2018; Chizat & Bach 2018). The figure shows the mean risk curves for widths
m = 2^5 ... 2^13, the spread of the risk across seeds at the final time against m (slope -1/2: central-limit
fluctuations), and the uniform-in-time distance of each curve to the widest width's mean curve.

It is figure 7 of ``meanfield figures`` (configuration ``examples/configs/figures/chaos.toml``, runs on a Dask
sweep over (m, seed)); set ``MEANFIELD_QUICK=1`` for the small sizes of the test suite.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["chaos"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "chaos.png")
