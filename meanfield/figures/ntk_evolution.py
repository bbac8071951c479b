r"""Figure 5. The tangent kernel at initialisation and after training (Jacot, Gabriel & Hongler 2018, Fig. 1,
two-layer analogue).

Setting
-------
Inputs on the unit circle, :math:`x(\gamma) = r(\cos\gamma, \sin\gamma)` with :math:`r = 1` (``figure.radius``),
d = 2, in the input convention of docs/conventions.md (pre-activations :math:`w\cdot x/\sqrt d`): the unit circle
gives the pre-activation variance :math:`\sigma_w^2 r^2/d = 1/2` of Jacot et al.'s first layer
:math:`W x/\sqrt{n_0}` on their unit circle, so the inputs are literally theirs. A two-layer relu network without
bias, :math:`f(x) = m^{-1/2}\sum_j a_j\,\mathrm{relu}(w_j\cdot x/\sqrt d)`, :math:`a_j, w_j \sim N(0, 1)` (the
``ntk`` preset: Jacot et al.'s NTK parameterisation), widths m = 500 and m = 10 000, 10 initialisations each
(``model.seed`` = 0..9). Each network is trained through the run pipeline (:meth:`FigureRun.run`, one run per
width and seed) by 200 full-batch gradient-descent steps at learning rate 1 (Euler steps, ``dt = 1``, ``lr = 1``)
on the target :math:`f^*(x) = x_1 x_2` at n = 4 training points on the same circle, at the angles
45°, 135°, 225°, 315° (the points where :math:`|x_1x_2|` is largest; targets :math:`\pm r^2/2`), stored as an
``.npz`` data set in the figure's run folder (``data.kind = "npz"``).

What is computed
----------------
For every run, from its recorded particles at step 0 and at the last step (200), the empirical NTK
(:func:`meanfield.ntk.model_ntk`)

.. math:: \Theta_t(x_0, x(\gamma)) = \frac1m\sum_{j=1}^m\Big[\sigma(z_j^0)\sigma(z_j^\gamma)
          + a_j^2\,\sigma'(z_j^0)\sigma'(z_j^\gamma)\,\frac{x_0\cdot x(\gamma)}{d}\Big],
          \qquad z_j^\gamma = w_j\cdot x(\gamma)/\sqrt d,

for :math:`x_0 = x(0)` and ``gamma_points`` angles :math:`\gamma \in [-\pi, \pi]`, and the analytic limit
:math:`\Theta^*(x_0, x(\gamma))` (:func:`meanfield.ntk.analytic_ntk`, the arc-cosine kernels) on the same inputs.
Per width: the spread of the kernel across initialisations at t = 0,
:math:`s_m = (\overline{\mathrm{Var}_{\rm inits}\,\Theta_0(x_0, x(\gamma))})^{1/2}` (the across-initialisation
sample variance, averaged over the angles); the relative change during training of each initialisation,
:math:`\|\Theta_T(x_0,\cdot) - \Theta_0(x_0,\cdot)\|_2 / \|\Theta_0(x_0,\cdot)\|_2` over the angles, averaged over
initialisations; and the largest deviation of the mean kernel at t = 0 from the analytic one,
:math:`\max_\gamma|\overline{\Theta_0} - \Theta^*| / \max_\gamma\Theta^*`. The runs also record the kernel observer
(``kernel_change`` on the training points) and the training risk.

Claims
------
``spread_ratio`` :math:`= s_{500}/s_{10000}`: at initialisation :math:`\Theta_m` is an average of m i.i.d. terms,
so its standard deviation is exactly :math:`\propto m^{-1/2}` and the ratio is :math:`\sqrt{20} = 4.47` up to the
sampling error of two spreads of 10 initialisations each (claimed within a factor 2, the 99 % interval).

``kernel_change_ratio``: the mean relative change at m = 500 over that at m = 10 000; the kernel moves less at
the larger width. Jacot et al. (2018) and Lee et al. (2019) bound the change by :math:`O(m^{-1/2})`, so the
ratio is claimed to be at least :math:`\sqrt{20}`. For a two-layer network the first-order change is an average
of terms odd in the output weights :math:`a_j`, which cancel to :math:`O(m^{-1/2})` relative to their size, so the
change is smaller than the bound: :math:`O(1/m)` for a smooth activation (on these inputs with erf, whose odd
network cannot fit the even target so that the residual stays of order one, 20 initialisations per width gave the
local exponent -0.94 between m = 500 and 10 000), while relu's derivative jumps when a pre-activation crosses 0, which gives an
exponent between -1/2 and -1 (about -0.7 here). The measured local exponent is printed.

``init_mean_error``: the mean over the 10 initialisations at m = 10 000 of the kernel at t = 0 matches the
analytic kernel, within the Monte Carlo error of that mean: the per-particle standard deviation of the kernel's
term at :math:`\gamma = 0` is :math:`\sqrt 3\,\Theta^*(x_0,x_0)` (relu, any radius), so the mean of
:math:`10 \times 10\,000` terms has relative standard error :math:`\sqrt{3/10^5} = 0.55\,\%`; claimed below
4 standard errors.
"""

from __future__ import annotations

import math

import numpy as np

TITLE = "The tangent kernel at initialisation and after training"
REFERENCE = ("Jacot, Gabriel & Hongler (2018), Neural Tangent Kernel: Convergence and Generalization in Neural "
             "Networks, Fig. 1 (two-layer analogue)")

__all__ = ["compute", "plot", "circle"]


def circle(angles, radius=1.0) -> np.ndarray:
    r"""Points :math:`r(\cos\gamma, \sin\gamma)` of the circle, shape (len(angles), 2).

    >>> circle([0.0, math.pi / 2], 2.0).round(12).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    g = np.asarray(angles, float)
    return radius * np.stack([np.cos(g), np.sin(g)], axis=1)


def compute(fig) -> dict:
    """Train every width and initialisation through the run pipeline; kernels from the recorded particles."""
    from ..flow import Dynamics
    from ..ntk import analytic_ntk, model_ntk
    from ..model import Model
    from ..trajectory import load
    from ._figure import compact

    p = fig.params
    widths, inits, seed0 = [int(m) for m in p["widths"]], int(p["inits"]), int(p["first_seed"])
    radius = float(p["radius"])
    fig.work.mkdir(parents=True, exist_ok=True)
    X = circle(np.radians(p["train_angles_deg"]), radius)
    y = X[:, 0] * X[:, 1]
    npz = fig.work / "train_points.npz"
    np.savez(npz, X=X, y=y)
    gammas = np.linspace(-math.pi, math.pi, int(p["gamma_points"]))
    Xg = circle(gammas, radius)
    x0 = circle([math.radians(p["x0_angle_deg"])], radius)

    per_width = {}
    for m in widths:
        K0, KT, loss, kchange = [], [], [], []
        for s in range(seed0, seed0 + inits):
            res = fig.run(f"m{m}_seed{s}", {"data": {"path": str(npz)}, "model": {"m": m, "seed": s}})
            cfg, run = res.config, res.runs[0]
            model = Model(d=2, **cfg.model_kwargs(run.scaling))
            dyn = Dynamics(**cfg.dynamics_kwargs())
            with load(run.path) as tr:
                theta0, thetaT = tr.particles[0], tr.particles[-1]
                times = np.asarray(tr.times, float)
                loss.append(np.asarray(tr.observables["train_loss"].value, float))
                kchange.append(np.asarray(tr.observables["kernel_change"].value, float))
            K0.append(model_ntk(theta0, x0, Xg, model=model, dynamics=dyn)[0])
            KT.append(model_ntk(thetaT, x0, Xg, model=model, dynamics=dyn)[0])
        K0, KT = np.array(K0), np.array(KT)
        change = np.linalg.norm(KT - K0, axis=1) / np.linalg.norm(K0, axis=1)
        per_width[m] = {"K0": K0, "KT": KT, "change": change, "loss": np.array(loss), "kchange": np.array(kchange),
                        "spread": float(np.sqrt(np.mean(K0.var(axis=0, ddof=1)))),
                        "n_steps": int(cfg.total_steps), "T": float(times[-1])}
    limit = analytic_ntk(x0, Xg, model.act, sigma_w=model.sigma_w, sigma_a=model.sigma_a, sigma_b=model.sigma_b,
                         bias=model.bias, lr=dyn.lr, layer_lr=dyn.layer_lr)[0]
    scale = float(np.max(np.abs(limit)))
    for r in per_width.values():
        r["init_mean_error"] = float(np.max(np.abs(r["K0"].mean(axis=0) - limit)) / scale)
        r["trained_mean_error"] = float(np.max(np.abs(r["KT"].mean(axis=0) - limit)) / scale)

    small, large = widths[0], widths[-1]
    spread_ratio = per_width[small]["spread"] / per_width[large]["spread"]
    change_ratio = float(per_width[small]["change"].mean() / per_width[large]["change"].mean())
    exponent = -math.log(change_ratio) / math.log(large / small)
    highlights = {}
    for m, r in per_width.items():
        highlights[f"m = {m}: spread of Theta_0 across initialisations"] = r["spread"]
        highlights[f"m = {m}: relative kernel change after {r['n_steps']} steps (mean)"] = float(r["change"].mean())
        highlights[f"m = {m}: relative kernel change on the training points (kernel observer, mean)"] = \
            float(r["kchange"][:, -1].mean())
        highlights[f"m = {m}: max |mean Theta_0 - Theta*| / max Theta*"] = r["init_mean_error"]
        highlights[f"m = {m}: final train risk (mean)"] = float(r["loss"][:, -1].mean())
    highlights["spread ratio (theory sqrt(m2/m1))"] = spread_ratio
    highlights["kernel change ratio"] = change_ratio
    highlights["local exponent of the kernel change in m"] = exponent

    widths_out = {str(m): {"K0": compact(r["K0"]), "KT": compact(r["KT"]), "change": compact(r["change"]),
                           "spread": r["spread"], "init_mean_error": r["init_mean_error"],
                           "trained_mean_error": r["trained_mean_error"],
                           "train_loss": compact(r["loss"]), "kernel_change_train": compact(r["kchange"]),
                           "n_steps": r["n_steps"], "T": r["T"]}
                  for m, r in per_width.items()}
    n_steps = per_width[small]["n_steps"]
    return {"gamma": compact(gammas), "limit": compact(limit), "times": times, "radius": radius,
            "train_angles_deg": list(p["train_angles_deg"]), "x0_angle_deg": p["x0_angle_deg"],
            "widths": widths_out, "lr": dyn.lr, "dt": float(cfg.dynamics["dt"]),
            "claims": {"spread_ratio": spread_ratio, "kernel_change_ratio": change_ratio,
                       "init_mean_error": per_width[large]["init_mean_error"]},
            "highlights": highlights,
            "sizes": f"widths {', '.join(str(m) for m in widths)}, {inits} initialisations each, "
                     f"{len(X)} training points on the circle of radius {radius:g}, {n_steps} gradient steps at "
                     f"learning rate {dyn.lr * cfg.dynamics['dt']:g}, {len(gammas)} angles"}


def plot(numbers: dict, params: dict):
    """Three panels: the kernels of every initialisation at both widths, and the spread and change scaled by
    sqrt(m)."""
    from ._style import figure, finish

    fig, axes = figure(3, width=4.7, height=4.2)
    gdeg = np.degrees(np.asarray(numbers["gamma"], float))
    limit = np.asarray(numbers["limit"], float)
    widths = numbers["widths"]
    cols = {0: "#2471a3", 1: "#c0392b"}
    for ax, (m, r) in zip(axes[:2], widths.items()):
        K0, KT = np.asarray(r["K0"], float), np.asarray(r["KT"], float)
        for i in range(K0.shape[0]):
            ax.plot(gdeg, K0[i], "-", color=cols[0], lw=0.7, alpha=0.7, label="t = 0" if i == 0 else None)
            ax.plot(gdeg, KT[i], "--", color=cols[1], lw=0.7, alpha=0.7,
                    label=f"t = {r['T']:g} ({r['n_steps']} steps)" if i == 0 else None)
        ax.plot(gdeg, limit, "k-", lw=1.6, label=r"analytic limit $\Theta^*$")
        for a in numbers["train_angles_deg"]:
            a = (a + 180.0) % 360.0 - 180.0
            ax.axvline(a, color="0.5", lw=0.6, ls=":")
        ax.set(xlabel=r"angle $\gamma$ of $x(\gamma)$ (degrees)", ylabel=r"$\Theta(x_0, x(\gamma))$",
               xlim=(-180, 180), xticks=np.arange(-180, 181, 90),
               title=f"m = {m}: {K0.shape[0]} initialisations\nspread at t = 0: {r['spread']:.3g}, "
                     f"mean relative change {np.mean(r['change']):.3g}")
        ax.title.set_fontsize(9)
        ax.plot([], [], ":", color="0.5", lw=0.6, label="training points")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # room for the legend above the curves
        finish(ax)
    ax = axes[2]
    for k, (m, r) in enumerate(widths.items()):
        K0, KT = np.asarray(r["K0"], float), np.asarray(r["KT"], float)
        sq = math.sqrt(int(m))
        ax.plot(gdeg, sq * K0.std(axis=0, ddof=1), "-", color=cols[k], lw=1.3,
                label=fr"$\sqrt{{m}}\,\times$ spread at t = 0, m = {m}")
        ax.plot(gdeg, sq * np.sqrt(np.mean((KT - K0) ** 2, axis=0)), "--", color=cols[k], lw=1.3,
                label=fr"$\sqrt{{m}}\,\times$ r.m.s. change $\Theta_T - \Theta_0$, m = {m}")
    ax.set(xlabel=r"angle $\gamma$ (degrees)", ylabel=r"$\sqrt{m}\,\times$ kernel spread or change",
           xlim=(-180, 180), xticks=np.arange(-180, 181, 90),
           title="both widths scaled by $\\sqrt{m}$:\ncurves that coincide follow $m^{-1/2}$")
    ax.title.set_fontsize(9)
    lo, hi = ax.get_ylim()
    ax.set_ylim(0.0, hi + 0.5 * hi)
    finish(ax)
    ax.legend(fontsize=7, loc="upper left")
    fig.get_layout_engine().set(rect=(0, 0.025, 1, 0.975))  # keep the x labels clear of the footer line
    c = numbers["claims"]
    m1, m2 = list(widths)
    fig.suptitle(f"Tangent kernel of a two-layer relu network, NTK scaling, x on the circle of radius "
                 f"{numbers['radius']:g}, $x_0$ at {numbers['x0_angle_deg']:g}°, target $x_1x_2$ "
                 f"(Jacot et al. 2018 Fig. 1 setting)\n{numbers['sizes']}\nspread ratio m = {m1} / {m2}: {c['spread_ratio']:.3g} "
                 f"(theory {math.sqrt(int(m2) / int(m1)):.3g}); kernel change ratio {c['kernel_change_ratio']:.3g} "
                 f"(local exponent {-math.log(c['kernel_change_ratio']) / math.log(int(m2) / int(m1)):.2f}); "
                 f"max |mean $\\Theta_0$ - $\\Theta^*$| / max $\\Theta^*$ at m = {m2}: {c['init_mean_error']:.3g}",
                 fontsize=9)
    return fig
