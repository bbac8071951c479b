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
# Run the figure (its runs, its numbers, its claims), then draw it again from its JSON. The sweep starts Dask
# worker processes, which import this script again: the work goes under a ``__main__`` guard.
import json
import os
from pathlib import Path

from meanfield.figures import chaos, make


def main():
    quick = os.environ.get("MEANFIELD_QUICK") == "1"
    (record,) = make(["chaos"], quick=quick, out="figures", progress=False)
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3f} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does NOT reproduce'})")
    # The figure, re-drawn from the numbers in figures/chaos.json.
    saved = json.loads(Path("figures/chaos.json").read_text())
    return chaos.plot(saved["numbers"], saved["params"])


if __name__ == "__main__":
    fig = main()
