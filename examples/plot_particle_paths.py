"""
Particle paths in the plane, rich vs lazy
=========================================

Chizat, Oyallon & Bach (2019), Fig. 1 setting: a relu student of m = 16 neurons learns a teacher of three
neurons from 15 points on the circle, from a small initial scale tau = 0.1 (rich) and a large one tau = 2
(lazy). The relu is 2-homogeneous, so the initial scale is the laziness knob: at small scale the particles
travel to the teacher's directions (feature learning); at large scale they fit the data by a small relative
motion (the network stays near its linearisation). The claims: the fraction of the rich run's output mass
on the teacher's directions, and the ratio of the two runs' relative displacements.
"""

# %%
import os
from pathlib import Path

from meanfield.figures import make, show

QUICK = os.environ.get("MEANFIELD_QUICK", "") not in ("", "0")
OUT = Path(os.environ.get("MEANFIELD_FIGURES_DIR", "figures"))
(record,) = make(["particle_paths"], quick=QUICK, out=OUT, reuse=True)
# a reused figure takes no time here: say how long it took to make
print(f"made in {record['wall_seconds']:.0f} s ({record['runs']} runs) on {record['date']}")
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.3g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# The figure, as saved in OUT with its PDF, its animation and the JSON of its numbers.
show(OUT / "particle_paths.png")
