"""
How far trajectories move against the width
===========================================

One initialisation per width and seed, trained under NTK scaling and under mean-field scaling (the same particles,
hence the same tangent kernel at initialisation), up to a fixed time T: the relative displacement of the
parameters, the Wasserstein distance W2(mu_T, mu_0) of the particle measure to its initialisation and the relative
change of the tangent kernel, against the width m on log-log axes. Under NTK scaling every particle moves
O(m^-1/2), so all three fall like m^-1/2 (lazy training); under mean-field scaling they stay O(1) (the particle
measure follows a Wasserstein gradient flow with a width-independent limit). The runs are a Dask sweep over
widths and seeds through the run pipeline. Set ``MEANFIELD_QUICK=1`` for the small sizes of the test suite.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["width_displacement"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "width_displacement.png")
