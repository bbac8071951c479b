"""
The network against its linearisation under NTK scaling
========================================================

Under NTK scaling a wide network trained by gradient flow stays close to its linearisation at initialisation
(Lee et al. 2019): the train and test losses of the network and of the linearised network, integrated side by
side from the same particles (``dynamics.kind = "linearized"``), coincide as the width grows, and both approach the
exact function-space solution of the kernel flow with the analytic (infinite-width) tangent kernel. The largest
difference of their outputs over time and inputs falls like m^-1/2 (relu). The runs are a Dask sweep over widths
and seeds through the run pipeline. Set ``MEANFIELD_QUICK=1`` for the small sizes of the test suite.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))

if __name__ == "__main__":  # Dask's worker processes re-import this script
    (record,) = make(["linearization"], quick=QUICK, out=OUT, reuse=True)
    # a reused figure takes no time here: say how long it took to make
    print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does not reproduce'})")
    # The figure, as saved in OUT with its PDF and the JSON of its numbers.
    show(OUT / "linearization.png")
