"""
Finite-width error of the empirical NTK
=======================================

The relative Frobenius distance between the empirical tangent kernel of a freshly initialised two-layer relu
network and its infinite-width limit, on 64 Gaussian inputs in d = 16, for widths 2^5 to 2^14: it falls like
m^-1/2, exactly as the central limit theorem predicts for an average of m independent terms, and the figure
prints its values at m = 128 and m = 1024 beside the literature's claim (more than 10 %, and 2-5 %).
Set ``MEANFIELD_QUICK=1`` for the quick sizes (widths up to 2^11, 10 seeds).
"""

# %%
# Compute the errors and the fitted slope, print the claims.
import json
import os

from meanfield.figures import make, ntk_error

quick = os.environ.get("MEANFIELD_QUICK") == "1"
(record,) = make(["ntk_error"], quick=quick, out="figures", progress=False)
for claim in record["claims"]:
    print(f"{claim['name']}: {claim['measured']:.4g} (expected {claim['expected']}; "
          f"{'holds' if claim['holds'] else 'does not reproduce'})")

# %%
# Draw it again from the numbers of its JSON.
with open("figures/ntk_error.json") as fh:
    saved = json.load(fh)
fig = ntk_error.plot(saved["numbers"], saved["params"])
