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
    from matplotlib.ticker import NullFormatter

    for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()), (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale == "log" and max(lim) > 10 * min(lim):  # over a decade: major labels suffice
            axis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="both", lw=0.4)
    if legend:
        ax.legend(fontsize=7)
