r"""Figure 6. Finite-width error of the empirical NTK at initialisation.

Setting
-------
A fixed input set chosen before any result was looked at: n = 64 Gaussian inputs :math:`x_i \sim N(0, I_d)` in
d = 16 (``meanfield.data.teacher_student`` with ``input = "gaussian"``, ``seed = 0``; the labels are not used),
a two-layer relu network without bias under NTK scaling with the conventions' initialisation
(:math:`a_j, w_j \sim N(0, 1)`, pre-activations :math:`w_j\cdot x/\sqrt d`; ``[model]`` and ``[dynamics]`` of the
configuration: ``lr = 1``, ``layer_lr = (1, 1, 1)``). For each width :math:`m = 2^5, \dots, 2^{14}` and each
seed s, the initial particles are drawn by :func:`meanfield.model.init_particles` from
``numpy.random.default_rng([s, m])`` (independent across widths and seeds). No training: this figure makes no
runs, only kernels at initialisation.

What is computed
----------------
The relative Frobenius error of the empirical kernel (:func:`meanfield.ntk.model_ntk`) against the analytic one
(:func:`meanfield.ntk.analytic_ntk`) on the 64 inputs,

.. math:: \varepsilon_m = \frac{\|\Theta_m(X, X) - \Theta^*(X, X)\|_F}{\|\Theta^*(X, X)\|_F},

its mean and standard deviation over seeds at every width (the error bars), and the least-squares slope of
:math:`\log\overline{\varepsilon_m}` against :math:`\log m` with its standard error
(:func:`meanfield.figures._figure.fit_slope`). Theory: at initialisation :math:`\Theta_m = \frac1m\sum_j g(\theta_j)`
is an average of m i.i.d. matrices with mean :math:`\Theta^*`, so exactly, at every m,

.. math:: E\,\|\Theta_m - \Theta^*\|_F^2 = \frac{S}{m},\qquad
          S = E_\theta\|g(\theta)\|_F^2 - \|\Theta^*\|_F^2,

with :math:`g(\theta)_{ik} = \eta[\eta_a\sigma(z_i)\sigma(z_k) + a^2\sigma'(z_i)\sigma'(z_k)(\eta_w x_i\cdot x_k/d
+ \eta_b)]`. :func:`clt_constant` estimates S by Monte Carlo over ``clt_particles`` particles (an independent
draw), which gives the drawn line :math:`(S/m)^{1/2}/\|\Theta^*\|_F` (the r.m.s. error; the mean error is smaller
by the Jensen gap, about half a per cent here).

Claims
------
``slope``: -1/2 within 0.05. ``clt_ratio``: the r.m.s. error over seeds divided by the prediction, averaged over
widths: 1 within the sampling error. ``error_128`` and ``error_1024``: the mean error at m = 128 and m = 1024
against the literature's claim that the empirical NTK of a width-128 network is more than 10 % off and that of a
width-1024 network 2-5 % off. These two are the literature's statements, recorded whichever way they come out:
the error of a given network depends on the input set (S and :math:`\|\Theta^*\|_F` do), and for this one the
figure reports what it measures.
"""

from __future__ import annotations

import math

import numpy as np

TITLE = "Finite-width error of the empirical NTK"
REFERENCE = ("Jacot, Gabriel & Hongler (2018); the finite-width error of the empirical NTK against its "
             "infinite-width limit (e.g. Novak et al. 2022, Fast Finite Width Neural Tangent Kernel)")

__all__ = ["compute", "plot", "clt_constant"]


def clt_constant(X, model, dynamics, n_particles, seed=0, chunk=4096) -> tuple:
    r"""Monte Carlo estimate of :math:`S = E_\theta\|g(\theta)\|_F^2 - \|E_\theta g(\theta)\|_F^2` for the kernel
    term :math:`g(\theta)` of one particle on the inputs ``X`` (so that :math:`E\|\Theta_m - \Theta^*\|_F^2 =
    S/m` for m i.i.d. particles), and :math:`\|E g\|_F^2` estimated from the same particles.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    model : meanfield.model.Model
        Activation, bias and the initial distribution of the particles (``init_particles``).
    dynamics : meanfield.flow.Dynamics
        ``lr`` and ``layer_lr``.
    n_particles : int
        Particles drawn (in chunks of ``chunk``) from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    (float, float, float)
        :math:`S`, the standard error of the average that estimates :math:`E\|g\|_F^2`, and that average.

    Notes
    -----
    With :math:`s = \sigma(z)`, :math:`t = \sigma'(z)`, :math:`M = \eta_w XX^\top/d + \eta_b`,
    :math:`\|g\|_F^2 = \eta^2[\eta_a^2|s|^4 + 2\eta_a a^2 (s\odot t)^\top M (s\odot t) + a^4 (t^2)^\top (M\odot M)
    (t^2)]`, O(n^2) per particle without forming g. The mean :math:`E g` is the average of the particles' terms,
    the empirical kernel of all of them.

    >>> from meanfield.model import Model, init_particles
    >>> from meanfield.flow import Dynamics
    >>> from meanfield.ntk import model_ntk
    >>> X = np.random.default_rng(1).standard_normal((5, 3))
    >>> mo, dy = Model(d=3, m=1000, scaling="ntk"), Dynamics()
    >>> S, se, Eg2 = clt_constant(X, mo, dy, 1000, seed=7)
    >>> th = init_particles(mo, np.random.default_rng(7))
    >>> one = Model(d=3, m=1, scaling="ntk")  # the kernel of one particle is its term g
    >>> terms = [np.sum(model_ntk(th[j:j + 1], X, model=one, dynamics=dy) ** 2) for j in range(1000)]
    >>> bool(abs(np.mean(terms) - Eg2) < 1e-9 * Eg2)
    True
    """
    from ..model import Model, init_particles
    from ..ntk import _values, empirical_ntk

    X = np.asarray(X, float)
    n, d = X.shape
    eta, (eta_a, eta_w, eta_b) = float(dynamics.lr), (float(v) for v in dynamics.layer_lr)
    if not model.bias:
        eta_b = 0.0
    M = eta_w * (X @ X.T) / d + eta_b
    M2 = M * M
    rng = np.random.default_rng(seed)
    sums, sumsq, total = 0.0, 0.0, 0
    mean_kernel = np.zeros((n, n))
    while total < n_particles:
        k = min(chunk, n_particles - total)
        part = Model(d=d, m=k, activation=model.act, scaling=model.scale, bias=model.bias, sigma_a=model.sigma_a,
                     sigma_w=model.sigma_w, sigma_b=model.sigma_b)
        theta = init_particles(part, rng)
        a, W = theta[:, 0], theta[:, 1 : 1 + d]
        Z = W @ X.T / math.sqrt(d)
        if model.bias:
            Z += theta[:, 1 + d][:, None]
        s, t = _values(model.act, Z)
        st = s * t
        t2 = t * t
        g2 = eta**2 * (eta_a**2 * np.sum(s * s, axis=1) ** 2 + 2 * eta_a * a**2 * np.sum((st @ M) * st, axis=1)
                       + a**4 * np.sum((t2 @ M2) * t2, axis=1))
        sums += g2.sum()
        sumsq += (g2 * g2).sum()
        mean_kernel += k * empirical_ntk(theta, X, activation=model.act, scaling="mean_field", lr=eta,
                                         layer_lr=dynamics.layer_lr, bias=model.bias)
        total += k
    Eg2 = sums / total
    se = math.sqrt(max(sumsq / total - Eg2**2, 0.0) / total)
    mean_kernel /= total
    # ||E g||^2 from the same particles is biased upwards by S / N; remove it (S ~ E||g||^2 - ||E g||^2)
    mean2 = float(np.sum(mean_kernel**2))
    S = (Eg2 - mean2) * total / (total - 1)
    return float(S), float(se), float(Eg2)


def compute(fig) -> dict:
    """Empirical kernels of fresh initialisations at every width and seed against the analytic kernel."""
    from ..config import from_dict
    from ..data import teacher_student
    from ..flow import Dynamics
    from ..model import Model, init_particles
    from ..ntk import analytic_ntk, model_ntk
    from ._figure import compact, fit_slope

    p = fig.params
    cfg = from_dict(fig.config(), source=fig.source)  # validates [data], [model], [dynamics]
    if cfg.data["kind"] != "teacher_student":
        raise ValueError("ntk_error takes its inputs from data.kind = 'teacher_student'")
    X = teacher_student(**{k: v for k, v in cfg.data.items() if k != "kind"}).X
    n, d = X.shape
    scaling = cfg.model["scaling"]
    dyn = Dynamics(**cfg.dynamics_kwargs())
    kw = cfg.model_kwargs(scaling)
    kw.pop("m")
    widths = [2**k for k in range(int(p["log2_widths"][0]), int(p["log2_widths"][1]) + 1)]
    seeds = list(range(int(p["first_seed"]), int(p["first_seed"]) + int(p["seeds"])))
    ref = Model(d=d, m=1, **kw)
    limit = analytic_ntk(X, activation=ref.act, sigma_w=ref.sigma_w, sigma_a=ref.sigma_a, sigma_b=ref.sigma_b,
                         bias=ref.bias, lr=dyn.lr, layer_lr=dyn.layer_lr)
    norm = float(np.linalg.norm(limit))
    err = np.empty((len(widths), len(seeds)))
    for i, m in enumerate(widths):
        model = Model(d=d, m=m, **kw)
        for k, s in enumerate(seeds):
            theta = init_particles(model, np.random.default_rng([s, m]))
            err[i, k] = np.linalg.norm(model_ntk(theta, X, model=model, dynamics=dyn) - limit) / norm
    S, S_se, _ = clt_constant(X, ref, dyn, int(p["clt_particles"]), seed=int(p["clt_seed"]))
    c = math.sqrt(S) / norm  # predicted r.m.s. error = c m^-1/2
    ms = np.asarray(widths, float)
    mean, sd = err.mean(axis=1), err.std(axis=1, ddof=1)
    rms = np.sqrt(np.mean(err**2, axis=1))
    slope, stderr = fit_slope(ms, mean)
    intercept = float(np.mean(np.log(mean) - slope * np.log(ms)))
    clt_ratio = float(np.mean(rms / (c / np.sqrt(ms))))
    at = {w: float(mean[widths.index(w)]) for w in (128, 1024) if w in widths}
    highlights = {"fitted slope of the mean error against m": slope, "standard error of the slope": stderr}
    for w, v in at.items():
        highlights[f"mean relative error at m = {w}"] = v
        highlights[f"s.d. over seeds at m = {w}"] = float(sd[widths.index(w)])
    highlights["CLT constant (E||Theta_m - Theta*||_F^2)^1/2 / ||Theta*||_F x m^1/2"] = c
    highlights["r.m.s. error / CLT prediction (mean over widths)"] = clt_ratio
    highlights["||Theta*||_F / n"] = norm / n
    return {"widths": widths, "seeds": seeds, "errors": compact(err), "mean": compact(mean), "sd": compact(sd),
            "rms": compact(rms), "slope": slope, "stderr": stderr, "intercept": intercept, "clt_constant": c,
            "clt_S": S, "clt_S_se": S_se, "n": n, "d": d, "activation": ref.act.name, "scaling": scaling,
            "claims": {"slope": slope, "clt_ratio": clt_ratio, "error_128": at.get(128, math.nan),
                       "error_1024": at.get(1024, math.nan)},
            "highlights": highlights,
            "sizes": f"n = {n} Gaussian inputs in d = {d}, m = 2^{int(math.log2(widths[0]))} .. "
                     f"2^{int(math.log2(widths[-1]))}, {len(seeds)} seeds per width, "
                     f"CLT constant from {int(p['clt_particles'])} particles"}


def plot(numbers: dict, params: dict):
    """Left: the error against m (log-log) with the fit, the CLT line and the literature's claims; right: the
    error times sqrt(m)."""
    from ._style import figure, finish

    fig, (ax, bx) = figure(2, width=5.4, height=4.4)
    ms = np.asarray(numbers["widths"], float)
    mean, sd, rms = (np.asarray(numbers[k], float) for k in ("mean", "sd", "rms"))
    c, slope, se = numbers["clt_constant"], numbers["slope"], numbers["stderr"]
    grid = np.geomspace(ms[0] / 1.3, ms[-1] * 1.3, 50)
    ax.errorbar(ms, mean, yerr=sd, fmt="o", color="#2471a3", ms=4, capsize=3,
                label=f"mean ± s.d. over {len(numbers['seeds'])} seeds")
    ax.plot(grid, np.exp(numbers["intercept"]) * grid**slope, "-", color="#2471a3", lw=1,
            label=f"fit: slope {slope:.3f} ± {se:.3f}")
    ax.plot(grid, c / np.sqrt(grid), "k--", lw=1, label=r"theory (CLT): $(S/m)^{1/2}/\|\Theta^*\|_F$")
    ax.plot([128, 128], [0.10, 0.45], "-", color="#c0392b", lw=6, alpha=0.3,
            label="literature's claims")
    ax.plot([1024, 1024], [0.02, 0.05], "-", color="#c0392b", lw=6, alpha=0.3)
    ax.text(128 * 1.15, 0.40, "literature: > 10 %", fontsize=7, color="#c0392b", va="center")
    ax.text(1024 * 1.15, 0.022, "literature: 2-5 %", fontsize=7, color="#c0392b", va="center")
    claims = numbers["claims"]
    for w, key in ((128, "error_128"), (1024, "error_1024")):
        v = claims[key]
        if v is not None and math.isfinite(v):
            ax.annotate(f"m = {w}: {100 * v:.1f} %", (w, v), xytext=(-14, -22), textcoords="offset points",
                        fontsize=8, ha="right", color="#c0392b", arrowprops={"arrowstyle": "-", "color": "#c0392b", "lw": 0.6})
    ax.set(xscale="log", yscale="log", xlabel="width m (neurons)",
           ylabel=r"$\|\Theta_m - \Theta^*\|_F / \|\Theta^*\|_F$",
           title=f"relative Frobenius error at initialisation\n(n = {numbers['n']} Gaussian inputs, "
                 f"d = {numbers['d']}, {numbers['activation']}, {numbers['scaling']} scaling)")
    ax.set_xscale("log", base=2)
    ax.title.set_fontsize(9)
    finish(ax)
    lo, hi = ax.get_ylim()
    ticks = [t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if lo <= t <= hi]
    ax.set_yticks(ticks, [f"{100 * t:g} %" for t in ticks])
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=7, loc="lower left")  # the data fall from upper left to lower right
    bx.errorbar(ms, mean * np.sqrt(ms), yerr=sd * np.sqrt(ms), fmt="o", color="#2471a3", ms=4, capsize=3,
                label=r"mean error $\times\sqrt{m}$")
    bx.plot(ms, rms * np.sqrt(ms), "s", mfc="none", color="#117864", ms=5, label=r"r.m.s. error $\times\sqrt{m}$")
    bx.axhline(c, color="k", ls="--", lw=1, label=f"theory (CLT): {c:.3f}")
    bx.set(xscale="log", xlabel="width m (neurons)", ylabel=r"relative error $\times\ \sqrt{m}$",
           title=f"flat = $m^{{-1/2}}$; r.m.s. / theory = {claims['clt_ratio']:.3f}")
    bx.set_xscale("log", base=2)
    lo, hi = bx.get_ylim()
    bx.set_ylim(0, hi * 1.2)
    bx.title.set_fontsize(9)
    finish(bx)
    fig.suptitle(f"Finite-width error of the empirical NTK: slope {slope:.3f} ± {se:.3f} (theory -0.5); "
                 f"m = 128: {100 * claims['error_128']:.1f} % (literature > 10 %), m = 1024: "
                 f"{100 * claims['error_1024']:.1f} % (literature 2-5 %)\n{numbers['sizes']}", fontsize=9)
    fig.get_layout_engine().set(rect=(0, 0.025, 1, 0.975))
    return fig
