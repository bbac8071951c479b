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
# Make the figure (``meanfield figures linearization``): its PNG, PDF and JSON go to ``figures/``.
import json
import os

from meanfield.figures import make, linearization

if __name__ == "__main__":  # the sweep starts worker processes, which import this file again
    (record,) = make(["linearization"], quick=os.environ.get("MEANFIELD_QUICK") == "1", out="figures",
                     progress=False)
    for claim in record["claims"]:
        print(f"{claim['name']}: {claim['measured']:.3f} (expected {claim['expected']}; "
              f"{'holds' if claim['holds'] else 'does NOT reproduce'})")

    # %%
    # Redraw it from the numbers of its JSON.
    with open("figures/linearization.json") as fh:
        saved = json.load(fh)
    fig = linearization.plot(saved["numbers"], saved["params"])
