"""
The scaling phase diagram
=========================

A two-layer relu network f = m^-alpha sum_j a_j relu(w_j.x/sqrt(d)) trained by gradient descent at the rate
m^beta: how far do its particles move as the width m grows? The exponent e of the relative displacement
||theta_T - theta_0|| / ||theta_0|| ~ m^e is measured over a grid of (alpha, beta) (one Dask sweep over alpha,
beta and m) and compared with the theory of meanfield.figures.phase_diagram: e = beta - alpha below the
stability boundary beta = min(2 alpha - 1, alpha), whose parts are the lazy line (the NTK scaling at
(1/2, 0), e = -1/2), the mean-field point (1, 1), e = 0, and the condensed line beta = alpha > 1; above it the
fit happens in vanishing time and gradient descent at a fixed step diverges from some width on.

Run ``python examples/plot_phase_diagram.py`` for the full size, or with ``MEANFIELD_QUICK=1`` for the quick
one; the figure, its PDF and a JSON of every number go to ``figures/``.
"""

# %%
# The sweep runs on a local Dask cluster whose worker processes re-import this script: everything that runs
# sits under the ``__main__`` guard.
import json
import os

from meanfield.figures import make
from meanfield.figures.phase_diagram import plot

QUICK = os.environ.get("MEANFIELD_QUICK") == "1"


def main():
    """Make the figure (quick or full), print its claims, and draw it again from its JSON."""
    (record,) = make(["phase_diagram"], quick=QUICK, out="figures", progress=False)
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.4g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    with open(os.path.join("figures", "phase_diagram.json")) as fh:
        saved = json.load(fh)
    return plot(saved["numbers"], saved["params"])  # left open: sphinx-gallery captures it


if __name__ == "__main__":
    fig = main()
