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
# Make the figure (``meanfield figures width_displacement``): its PNG, PDF and JSON go to ``figures/``.
import json
import os

from meanfield.figures import make, width_displacement

if __name__ == "__main__":  # the sweep starts worker processes, which import this file again
    (record,) = make(["width_displacement"], quick=os.environ.get("MEANFIELD_QUICK") == "1", out="figures",
                     progress=False)
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3f} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does NOT reproduce'})")

    # %%
    # Redraw it from the numbers of its JSON.
    with open("figures/width_displacement.json") as fh:
        saved = json.load(fh)
    fig = width_displacement.plot(saved["numbers"], saved["params"])
