"""
The quickstart: rich vs lazy on a teacher
=========================================

The README's main job (m = 512, d = 8, a relu teacher of three neurons), mean-field and NTK scaling from
one initialisation: the mean-field particles move O(1) in Wasserstein distance and learn the teacher's
directions, the NTK particles move O(m^-1/2) and the outputs follow the tangent kernel. The claims: the ratio
of the two W2 distances to the initial measure, and that the rich run has the lower test risk.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))
(record,) = make(["quickstart"], quick=QUICK, out=OUT, reuse=True)
# a reused figure takes no time here: say how long it took to make
print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# The figure, as saved in OUT with its PDF, its animation and the JSON of its numbers.
show(OUT / "quickstart.png")
