"""Shared look of meanfield figures."""

import numpy as np

COLORS = {"mean_field": "#c0392b", "ntk": "#2471a3", "lazy": "#7d3c98", "explicit": "#117864",
          "linearized": "#229954"}
LABELS = {"mean_field": "mean-field (rich)", "ntk": "NTK scaling (lazy)", "lazy": "lazy (c = lazy_scale)",
          "explicit": "explicit scaling", "linearized": "linearised network"}


def figure(n_panels, width=4.6, height=3.8):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), constrained_layout=True)
    return fig, np.atleast_1d(axes)


def loglog_slope(x, y):
    """Least-squares slope of log y against log x over the points where both are positive."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def finish(ax, legend=True):
    """Grid, legend, and no crowded minor-tick labels on log axes."""
    import math

    from matplotlib.ticker import FuncFormatter, NullFormatter

    def two_five(x, _):  # minor labels at 2 and 5 times a power of ten only
        mantissa = x / 10.0 ** math.floor(math.log10(x) + 1e-9)
        return f"{x:g}" if any(abs(mantissa - k) < 1e-6 for k in (2, 5)) else ""

    for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log" or min(lim) <= 0:
            continue
        lo, hi = sorted(lim)
        decades = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1  # labelled powers of ten in view
        if decades >= 2:  # major labels suffice
            axis.set_minor_formatter(NullFormatter())
        elif hi > 10 * lo:  # one labelled power of ten only: label 2x and 5x too
            axis.set_minor_formatter(FuncFormatter(two_five))
    ax.grid(alpha=0.3, which="both", lw=0.4)
    if legend:
        ax.legend(fontsize=7)
