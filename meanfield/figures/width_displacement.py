r"""Figure 3. How far trajectories move against the width, under NTK and mean-field scaling.

One initialisation per (width, seed) is trained under both presets (``run.scalings = ["ntk", "mean_field"]``:
the same particles, hence the same empirical kernel at initialisation and the same initial output velocity;
docs/conventions.md, "Scaling presets") by full-batch gradient descent on a teacher-student problem, up to a
fixed time :math:`T`. At :math:`T` the observers of the run pipeline (:mod:`meanfield.observers`) give

* the relative displacement :math:`\|\theta_T - \theta_0\|_F / \|\theta_0\|_F` (``motion``),
* :math:`W_2(\mu_T, \mu_0)` between the particle measures (``w2``): exact (an assignment problem) up to
  ``w2_exact_max_m``, the observer's paired subsampled estimate with its standard error above,
* the relative change of the empirical tangent kernel :math:`\|\Theta_T - \Theta_0\|_F / \|\Theta_0\|_F` on the
  first ``observers.kernel_points`` training inputs (``kernel``).

The runs are a Dask sweep (:meth:`FigureRun.sweep`) over the widths, zipped with the W2 method, times the seeds;
the numbers are read from the sweep's index (the final value of every observable of every flow).

Theory. Under NTK scaling (:math:`f = m^{-1/2}\sum_j a_j\sigma(\cdot)`, rate :math:`\eta`) a particle's velocity
carries :math:`m^{-1/2}` while the outputs move at an :math:`m`-independent rate, so at fixed :math:`T` every
particle has moved :math:`O(m^{-1/2})`: the relative displacement, :math:`W_2(\mu_T, \mu_0)` (at most the identity
coupling's cost) and the kernel change all scale as :math:`m^{-1/2}`. Under mean-field scaling the particle
measure follows a Wasserstein gradient flow with an :math:`m`-independent limit, so all three are :math:`O(1)`:
slope 0.

The kernel change under NTK scaling is only *bounded* by :math:`O(m^{-1/2})` (Jacot et al. 2018; Lee et al. 2019,
Theorem 2.1), and here it falls faster: the first-order change of :math:`\Theta` is odd in the output weights
:math:`a_j` (its terms carry :math:`a_j` or :math:`a_j^3`, since :math:`\dot w_j \propto a_j`), so it cancels in
the average over particles drawn from a symmetric law (exactly, pair by pair, with the symmetric initialisation).
What remains is second order, :math:`O(m^{-1})`, for smooth activations and, for relu, the activation-pattern
flips of the :math:`\sim m^{1/2}` neurons whose pre-activation lies within :math:`O(m^{-1/2})` of the kink; their
contributions, :math:`\pm a_j^2/m` with random signs, add up to :math:`O(m^{1/4}/m) = O(m^{-3/4})` (a heuristic;
the line is drawn). A side check of the same setting (widths 64 ... 4096, 3 seeds, not part of this figure)
gave kernel slopes -1.07 for tanh and -0.73 (symmetric) / -0.76 (i.i.d.) initialisation for relu.

Each quantity's seed mean is fitted against :math:`m` on log-log axes (:func:`~meanfield.figures._figure.fit_slope`:
slope and standard error); error bars are the standard deviation over seeds. Claims: the fitted slopes of the
displacement and of :math:`W_2` (NTK: :math:`-1/2`; mean-field: 0), of the mean-field kernel change (0), and the
bound on the NTK kernel change (slope at most :math:`-1/2` plus a tolerance).
"""

from __future__ import annotations

import numpy as np

TITLE = "How far trajectories move against the width"
REFERENCE = ("Jacot, Gabriel & Hongler (2018); Chizat, Oyallon & Bach (2019); Mei, Montanari & Nguyen (2018): "
             "lazy (NTK) vs mean-field motion")

__all__ = ["compute", "plot", "QUANTITIES"]

#: observable -> (claim stem, axis label)
QUANTITIES = {
    "displacement": ("displacement", r"relative displacement $\|\theta_T-\theta_0\|_F/\|\theta_0\|_F$"),
    "w2_to_init": ("w2", r"$W_2(\mu_T, \mu_0)$ (parameter units)"),
    "kernel_change": ("kernel", r"relative kernel change $\|\Theta_T-\Theta_0\|_F/\|\Theta_0\|_F$"),
}
TITLES = {"displacement": "relative displacement", "w2_to_init": r"$W_2(\mu_T, \mu_0)$",
          "kernel_change": "tangent-kernel change"}
SCALINGS = {"ntk": "ntk", "mean_field": "mf"}


def compute(fig) -> dict:
    """Sweep widths x seeds (both presets per run), read the final observables from the sweep index, fit."""
    from ._figure import fit_slope

    p = fig.params
    widths = [int(m) for m in p["widths"]]
    methods = ["exact" if m <= p["w2_exact_max_m"] else "auto" for m in widths]
    seed_list = [int(s) for s in p["seeds"]]
    idx = fig.sweep("sweep", zipped={"model.m": widths, "observers.w2_method": methods},
                    grid={"model.seed": seed_list})
    col = idx.columns
    bad = col["status"] != "completed"
    if bad.any():
        raise RuntimeError(f"{int(bad.sum())} runs of the sweep did not complete: " + "; ".join(set(col["error"][bad])))
    ms = np.asarray(col["model.m"], int)
    seeds = seed_list
    t_end = float(fig.tables["run"]["t_end"])
    out = {"widths": widths, "seeds": len(seeds), "kernel_points": int(fig.tables["observers"]["kernel_points"]), "seed_list": seeds, "w2_methods": methods, "T": t_end, "series": {}}
    claims, highlights = {}, {}
    for scaling, short in SCALINGS.items():
        rows = col["scaling"] == scaling
        series = {}
        for key, (stem, _) in QUANTITIES.items():
            vals = np.array([[float(col[key][rows & (ms == m) & (col["model.seed"] == s)][0]) for s in seeds]
                             for m in widths])  # (widths, seeds)
            mean, std = vals.mean(axis=1), vals.std(axis=1, ddof=1) if len(seeds) > 1 else np.zeros(len(widths))
            slope, err = fit_slope(widths, mean)
            series[key] = {"values": vals, "mean": mean, "std": std, "slope": slope, "stderr": err}
            claims[f"{short}_{stem}_slope"] = slope
            highlights[f"{scaling}: slope of {stem}"] = slope
            highlights[f"{scaling}: standard error of the {stem} slope"] = err
            for m in (widths[0], widths[-1]):
                highlights[f"{scaling}: {stem} at m = {m}"] = float(mean[widths.index(m)])
        w2se = np.array([[float(col["w2_stderr"][rows & (ms == m) & (col["model.seed"] == s)][0]) for s in seeds]
                         for m in widths])
        series["w2_stderr"] = w2se.max(axis=1)
        series["identity_bound"] = np.array([np.mean([float(col["identity_bound"][rows & (ms == m) & (col["model.seed"] == s)][0])
                                                      for s in seeds]) for m in widths])
        series["train_loss"] = np.array([np.mean([float(col["train_loss"][rows & (ms == m) & (col["model.seed"] == s)][0])
                                                  for s in seeds]) for m in widths])
        highlights[f"{scaling}: train loss at T, m = {widths[-1]}"] = float(series["train_loss"][-1])
        out["series"][scaling] = series
    t = fig.tables
    steps = int(round(t_end / t["dynamics"]["dt"]))
    out["setting"] = (f"d = {t['data']['d']}, n = {t['data']['n_train']}, relu teacher of k = {t['data']['k']}, "
                      f"relu student, symmetric init, lr {t['dynamics']['lr']:g}, T = {t_end:g} "
                      f"({steps} Euler steps of {t['dynamics']['dt']:g})")
    exact_max = max([m for m, k in zip(widths, methods) if k == "exact"], default=0)
    out["w2_note"] = (f"W2 exact (assignment) for m <= {exact_max}" +
                      (f"; paired subsampled estimate (4 x 500 particles, +- s.e.) for m >= "
                       f"{min(m for m, k in zip(widths, methods) if k != 'exact')}" if exact_max < widths[-1] else ""))
    out.update(claims=claims, highlights=highlights,
               sizes=f"m = {widths[0]} ... {widths[-1]} ({len(widths)} widths), {len(seeds)} seeds per width, "
                     f"{out['setting']}; {out['w2_note']}; kernel on {t['observers']['kernel_points']} inputs")
    return out


def plot(numbers: dict, params: dict):
    """Three log-log panels against m: displacement, W2, kernel change; both presets, fits and theory lines."""
    from ._style import COLORS, LABELS, figure, finish

    fig, axes = figure(3, width=4.9, height=4.6)
    m = np.asarray(numbers["widths"], float)
    exact = np.asarray([k == "exact" for k in numbers["w2_methods"]])
    for ax, (key, (stem, label)) in zip(axes, QUANTITIES.items()):
        for scaling in ("ntk", "mean_field"):
            s = numbers["series"][scaling][key]
            mean, std = np.asarray(s["mean"], float), np.asarray(s["std"], float)
            col = COLORS[scaling]
            yerr = std.copy()
            if key == "w2_to_init":  # the estimate's own standard error adds to the seed spread
                yerr = np.hypot(std, np.asarray(numbers["series"][scaling]["w2_stderr"], float))
                ax.errorbar(m[exact], mean[exact], yerr=yerr[exact], fmt="o", color=col, ms=4, capsize=2)
                if (~exact).any():
                    ax.errorbar(m[~exact], mean[~exact], yerr=yerr[~exact], fmt="o", mfc="white", color=col, ms=4,
                                capsize=2)
            else:
                ax.errorbar(m, mean, yerr=yerr, fmt="o", color=col, ms=4, capsize=2)
            b, err = s["slope"], s["stderr"]
            logm = np.log(m)
            a = np.mean(np.log(mean)) - b * np.mean(logm)
            ax.plot(m, np.exp(a + b * logm), "-", color=col, lw=1.2,
                    label=f"{LABELS[scaling]}: fitted slope {b:.3f} ± {err:.3f}")
            theory = -0.5 if scaling == "ntk" else 0.0
            a_th = np.mean(np.log(mean)) - theory * np.mean(logm)
            if scaling == "ntk":
                th_label = "theory: slope -1/2" if key != "kernel_change" else "bound O(m^-1/2) (Jacot; Lee et al.)"
            else:
                th_label = "theory: slope 0"
            ax.plot(m, np.exp(a_th + theory * logm), ":", color="k", lw=1.0, label=th_label)
            if scaling == "ntk" and key == "kernel_change":
                a_h = np.mean(np.log(mean)) + 0.75 * np.mean(logm)
                ax.plot(m, np.exp(a_h - 0.75 * logm), "--", color="0.5", lw=1.0,
                        label="slope -3/4 (relu pattern flips, heuristic)")
        if key == "w2_to_init" and (~exact).any():
            ax.plot([], [], "o", color="0.3", ms=4, label="exact W2")
            ax.plot([], [], "o", color="0.3", mfc="white", ms=4, label="subsampled estimate (± s.e.)")
        ax.set(xscale="log", yscale="log", xlabel="width m (neurons)", ylabel=label)
        ax.set_xscale("log", base=2)
        probe = f" ({numbers['kernel_points']} training inputs)" if key == "kernel_change" else ""
        ax.set_title(f"{TITLES[key]} at T = {numbers['T']:g}{probe}", fontsize=10)
        finish(ax)
    fig.suptitle(f"How far the particles move at fixed time against the width: NTK vs mean-field scaling, "
                 f"{numbers['seeds']} seeds per width (error bars: std over seeds)\n{numbers['setting']}; "
                 f"{numbers['w2_note']}", fontsize=9)
    return fig
