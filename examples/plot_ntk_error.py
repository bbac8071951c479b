"""
Finite-width error of the empirical NTK
=======================================

The relative Frobenius distance between the empirical tangent kernel of a freshly initialised two-layer relu
network and its infinite-width limit, on 64 Gaussian inputs in d = 16, for widths 2^5 to 2^14: it falls like
m^-1/2, exactly as the central limit theorem predicts for an average of m independent terms, and the figure
prints its values at m = 128 and m = 1024 beside the literature's claim (more than 10 %, and 2-5 %).
``MEANFIELD_QUICK=1`` gives the quick sizes (widths up to 2^11, 10 seeds).
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))
(record,) = make(["ntk_error"], quick=QUICK, out=OUT, reuse=True)
# a reused figure takes no time here: say how long it took to make
print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# The figure, as saved in OUT with its PDF and the JSON of its numbers.
show(OUT / "ntk_error.png")
