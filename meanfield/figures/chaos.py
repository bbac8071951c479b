r"""Figure 7. The mean-field limit: propagation of chaos (Mei, Montanari & Nguyen 2018; Chizat & Bach 2018).

Setting. Gaussian inputs :math:`x \sim N(0, I_d)` labelled by a relu teacher of k neurons,
:math:`f^*(x) = \sum_k a^*_k \sigma(w^*_k\cdot x/\sqrt d)`, and a student under mean-field scaling
:math:`f(x) = \frac1m\sum_{j=1}^m a_j\sigma(w_j\cdot x/\sqrt d)` whose particles start i.i.d.,
:math:`a_j \sim N(0, 1)`, :math:`w_j \sim N(0, I_d)`, and follow the gradient flow of the **exact population
risk** (``dynamics.kind = "population"``, :func:`meanfield.population.population_flow`)

.. math:: R(\mu^m) = \tfrac12 E_x[(f(x) - f^*(x))^2], \qquad
   \dot\theta_j = -\eta\,\nabla_\theta V(\theta_j; \mu^m_t), \quad
   V(\theta;\mu) = E_x[(f_\mu(x) - f^*(x))\,a\sigma(w\cdot x/\sqrt d)],

with :math:`\mu^m_t = \frac1m\sum_j\delta_{\theta_j(t)}` (explicit Euler steps of size ``dt``: one step is one
gradient-descent step on :math:`R`). There is no sampling noise in the dynamics: the only randomness is the
initial draw of the m particles, so the risk curve :math:`t\mapsto R(\mu^m_t)` of one seed is a deterministic
function of the initial empirical measure.

Propagation of chaos: as :math:`m\to\infty`, :math:`\mu^m_t` converges to the solution :math:`\mu_t` of the
mean-field PDE :math:`\partial_t\mu = \nabla\cdot(\mu\,\eta\nabla_\theta V(\theta;\mu))` started from the
initial law, uniformly on :math:`[0, T]`, and the fluctuations are of the central-limit size:
:math:`R(\mu^m_T) - R(\mu_T) = O_P(m^{-1/2})`, with a bias :math:`E R(\mu^m_T) - R(\mu_T) = O(1/m)`
(Mei, Montanari & Nguyen 2018, Thm. 3; Chizat & Bach 2018; Sirignano & Spiliopoulos 2020).

Computed (one run per (m, seed), a Dask sweep through :meth:`FigureRun.sweep`; every risk read back from the
runs' HDF5 files, observable ``population_risk``):

* the mean over seeds of the risk curve :math:`\bar R_m(t)` for every width m (the +/- 1 std band of the
  narrowest and the widest);
* the spread over seeds :math:`s_m = \mathrm{std}_{\rm seeds} R(\mu^m_T)` (sample std, ddof = 1) at the final
  time T, against m, log-log, with the least-squares slope and its standard error
  (:func:`~meanfield.figures._figure.fit_slope`); theory :math:`-1/2`. The spread at t = 0 (the plain
  central-limit fluctuation of the initial draw) is drawn beside it;
* the uniform-in-time distance of the curves to the limit,
  :math:`D_m = (\mathrm{mean}_{\rm seeds}\,\sup_{t\le T}|R(\mu^m_t) - \bar R_M(t)|^2)^{1/2}` for every width
  m below the widest M, whose mean curve :math:`\bar R_M` stands for the limit (its own error,
  :math:`\max_t s_M(t)/\sqrt{S_M}`, is drawn), with its fitted slope (theory -1/2: bias O(1/m) and
  fluctuations :math:`O(m^{-1/2})`);
* the gap between the mean risks at T of consecutive widths, :math:`g_i = |\bar R_{m_{i+1}}(T) - \bar R_{m_i}(T)|`,
  with its standard error :math:`(s_{m_i}^2/S_i + s_{m_{i+1}}^2/S_{i+1})^{1/2}` (S seeds) and fitted slope: shown,
  not claimed (each gap is one draw of a difference dominated by the seed noise of the two means, so its slope
  has a standard error of about 0.2).

Claims: ``spread_slope``, the slope of :math:`s_m(T)` against m (theory -1/2), and ``sup_distance_slope``, the
slope of :math:`D_m` against m (theory -1/2: the whole curve converges).
"""

from __future__ import annotations

import numpy as np

TITLE = "The mean-field limit: propagation of chaos"
REFERENCE = ("Mei, Montanari & Nguyen (2018), A mean field view of the landscape of two-layer neural networks; "
             "Chizat & Bach (2018), On the global convergence of gradient descent for over-parameterized models")

__all__ = ["compute", "plot"]


def _points(widths, seeds, first_seed=0):
    """The (m, seed) points of the sweep, widest first (the longest runs start first on the workers)."""
    ms, ss = [], []
    for m, n in sorted(zip(widths, seeds), reverse=True):
        ms += [int(m)] * int(n)
        ss += list(range(int(first_seed), int(first_seed) + int(n)))
    return ms, ss


def compute(fig) -> dict:
    """One population-flow run per (m, seed) in a Dask sweep; the risk curves read back from the files."""
    from ._figure import compact, fit_slope

    p = fig.params
    widths, seeds = [int(m) for m in p["widths"]], [int(s) for s in p["seeds"]]
    if len(widths) != len(seeds):
        raise ValueError("figure.widths and figure.seeds must have the same length")
    ms, ss = _points(widths, seeds, p.get("first_seed", 0))
    idx = fig.sweep("sweep", zipped={"model.m": ms, "model.seed": ss})
    cols = idx.columns
    curves = {m: [] for m in widths}
    times = None
    seconds = {m: 0.0 for m in widths}
    for row in range(len(idx)):
        if cols["status"][row] != "completed":
            raise RuntimeError(f"run {cols['run'][row]} of the sweep is {cols['status'][row]}: {cols['error'][row]}")
        m = int(cols["model.m"][row])
        with idx.trajectory(row) as tr:
            s = tr.observables["population_risk"]
            curves[m].append(np.asarray(s.value, float))
            times = np.asarray(s.time, float)
        seconds[m] += float(cols["seconds"][row])
    R = {m: np.asarray(curves[m]) for m in widths}  # seeds x times
    mean = np.array([R[m].mean(axis=0) for m in widths])
    std = np.array([R[m].std(axis=0, ddof=1) for m in widths])
    S = np.array(seeds, float)
    spread_T, spread_0 = std[:, -1], std[:, 0]
    slope, err = fit_slope(widths, spread_T)
    slope0, err0 = fit_slope(widths, spread_0)
    gap = np.abs(np.diff(mean[:, -1]))
    gap_se = np.sqrt(spread_T[:-1] ** 2 / S[:-1] + spread_T[1:] ** 2 / S[1:])
    gslope, gerr = fit_slope(widths[:-1], gap)
    # uniform-in-time distance of each seed's curve to the mean curve of the widest width (the proxy of the limit)
    dist = np.array([np.sqrt(np.mean(np.max(np.abs(R[m] - mean[-1]), axis=1) ** 2)) for m in widths[:-1]])
    ref_err = float(np.max(std[-1]) / np.sqrt(S[-1]))
    dslope, derr = fit_slope(widths[:-1], dist)
    T = float(times[-1])
    highlights = {"spread slope at T (theory -0.5)": slope, "spread slope at T: standard error": err,
                  "spread slope at t = 0 (central limit, -0.5)": slope0,
                  "spread slope at t = 0: standard error": err0,
                  "sup-distance slope (theory -0.5)": dslope, "sup-distance slope: standard error": derr,
                  "mean-gap slope at T": gslope, "mean-gap slope at T: standard error": gerr}
    for i, m in enumerate(widths):
        if i in (0, len(widths) - 1):
            highlights[f"m = {m}: mean risk at T"] = float(mean[i, -1])
            highlights[f"m = {m}: spread (std over {seeds[i]} seeds) of the risk at T"] = float(spread_T[i])
    d, k = fig.tables["data"]["d"], fig.tables["data"]["k"]
    dyn = fig.tables["dynamics"]
    n_steps = int(round(T / dyn["dt"]))
    sizes = (f"m = {widths[0]} ... {widths[-1]} ({len(widths)} widths), seeds per width "
             f"{'/'.join(str(s) for s in seeds)}, T = {T:g} ({n_steps} {dyn['integrator']} steps of dt = {dyn['dt']:g}), "
             f"d = {d}, k = {k}, relu, {len(ms)} runs")
    return {"widths": widths, "seeds": seeds, "times": compact(times), "mean": compact(mean), "std": compact(std),
            "spread_T": spread_T, "spread_0": spread_0, "slope": slope, "stderr": err, "slope_0": slope0,
            "stderr_0": err0, "gap": gap, "gap_se": gap_se, "gap_slope": gslope, "gap_stderr": gerr, "T": T,
            "dist": dist, "dist_slope": dslope, "dist_stderr": derr, "ref_err": ref_err,
            "run_seconds": [seconds[m] for m in widths], "d": d, "k": k,
            "claims": {"spread_slope": slope, "sup_distance_slope": dslope},
            "highlights": highlights, "sizes": sizes}


def _width_ticks(ax, widths):
    from matplotlib.ticker import FixedLocator, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(widths))
    ax.set_xticklabels([f"{m:g}" for m in widths], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot(numbers: dict, params: dict):
    """Three panels: the mean risk curves per width; the seed spread at T against m (log-log, fitted slope,
    theory -1/2); the distance of the curves to the widest width's mean curve, and the consecutive gaps."""
    import matplotlib.pyplot as plt

    from ._style import figure, finish

    fig, (ax0, ax1, ax2) = figure(3, width=4.8, height=4.5)
    widths = np.asarray(numbers["widths"], float)
    t = np.asarray(numbers["times"])
    mean, std = np.asarray(numbers["mean"]), np.asarray(numbers["std"])
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, widths.size))
    for i, m in enumerate(widths):
        ax0.plot(t, mean[i], "-", color=colors[i], lw=1.2, label=f"m = {m:g} ({numbers['seeds'][i]} seeds)")
    for i in (0, widths.size - 1):
        ax0.fill_between(t, mean[i] - std[i], mean[i] + std[i], color=colors[i], alpha=0.18, lw=0,
                         label=f"+/- 1 std over seeds, m = {widths[i]:g}")
    ax0.set(xlabel="time t (gradient steps x dt)", ylabel=r"population risk $R(\mu^m_t)$",
            title="risk curves, mean over seeds per width")
    ax0.title.set_fontsize(9)
    finish(ax0)
    ax0.legend(fontsize=6.5, ncol=1)

    sT, s0 = np.asarray(numbers["spread_T"]), np.asarray(numbers["spread_0"])
    ax1.loglog(widths, sT, "o", color="C3", label=f"std of R at T = {numbers['T']:g}: slope "
                                                     f"{numbers['slope']:.3f} +/- {numbers['stderr']:.3f}")
    b, a = np.polyfit(np.log(widths), np.log(sT), 1)
    ax1.loglog(widths, np.exp(a + b * np.log(widths)), "-", color="C3", lw=1)
    ax1.loglog(widths, s0, "s", color="0.55", ms=4, label=f"std of R at t = 0 (initial draw): slope "
                                                           f"{numbers['slope_0']:.3f} +/- {numbers['stderr_0']:.3f}")
    ref = np.exp(np.mean(np.log(sT) + 0.5 * np.log(widths))) * widths ** -0.5
    ax1.loglog(widths, ref, ":", color="k", lw=1, label="theory: slope -1/2")
    ax1.set(xlabel="width m (number of particles)", ylabel="std over seeds of the population risk",
            title="fluctuations of the risk across seeds")
    ax1.title.set_fontsize(9)
    _width_ticks(ax1, widths)
    finish(ax1)

    mg = widths[:-1]
    dist, gap, se = (np.asarray(numbers[k]) for k in ("dist", "gap", "gap_se"))
    ax2.loglog(mg, dist, "o", color="C2", label=r"r.m.s. over seeds of $\sup_{t\leq T}|R(\mu^m_t) - \bar R_M(t)|$: "
                                                f"slope {numbers['dist_slope']:.3f} +/- {numbers['dist_stderr']:.3f}")
    b, a = np.polyfit(np.log(mg), np.log(dist), 1)
    ax2.loglog(mg, np.exp(a + b * np.log(mg)), "-", color="C2", lw=1)
    ax2.loglog(mg, np.exp(np.mean(np.log(dist) + 0.5 * np.log(mg))) * mg ** -0.5, ":", color="k", lw=1,
               label="theory: slope -1/2")
    ax2.axhline(numbers["ref_err"], color="C2", ls="--", lw=0.8,
                label=f"error of the reference mean curve (M = {widths[-1]:g}): std/sqrt(seeds)")
    ok = gap > 0
    ax2.loglog(mg[ok], gap[ok], "v", color="C0", ms=5,
               label=f"gap |mean R at T of m and 2m|: slope {numbers['gap_slope']:.2f} +/- {numbers['gap_stderr']:.2f}")
    ax2.loglog(mg, se, ":", color="C0", lw=1, label="standard error of that gap (seed noise)")
    ax2.set(xlabel="width m (pairs: m and 2m)", ylabel="distance between risk curves",
            title="the curves converge as m grows")
    ax2.title.set_fontsize(9)
    _width_ticks(ax2, mg)
    finish(ax2)
    low = min(np.min(dist), np.min(gap[ok]) if ok.any() else np.inf, np.min(se))
    ax2.set_ylim(low / 8, None)
    ax2.legend(fontsize=6.3, loc="lower left")
    fig.suptitle(f"Propagation of chaos: population risk of a mean-field relu student, k = {numbers['k']} relu "
                 f"teacher, Gaussian inputs d = {numbers['d']}\n{numbers['sizes']}", fontsize=9)
    return fig
