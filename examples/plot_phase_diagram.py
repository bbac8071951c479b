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
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["phase_diagram"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "phase_diagram.png")
