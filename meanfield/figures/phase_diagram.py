r"""Figure 8. The scaling phase diagram: how far the particles move against the width, over (alpha, beta).

The network is the ``explicit`` preset of docs/conventions.md,

.. math:: f(x) = c\,m^{-\alpha} \sum_{j=1}^m a_j\,\mathrm{relu}(w_j\cdot x/\sqrt d), \qquad
          \dot\theta_j = -\eta\,\frac{m^{\beta}}{c^2}\,\nabla_{\theta_j} R,

with particles :math:`a_j, w_j \sim N(0, 1)` in symmetric pairs (so :math:`f_0 \equiv 0` for every
:math:`\alpha`: without them :math:`f_0 = O(m^{1/2-\alpha})` would blow up for :math:`\alpha < 1/2`), a relu
teacher of ``data.k`` neurons, :math:`c = \eta = 1`, trained by gradient descent (Euler steps) with a fixed step
:math:`h` for a fixed time :math:`T = N h`. For every :math:`(\alpha, \beta)` of a grid and every width
:math:`m` the run records the relative displacement :math:`D_m = \|\theta_T - \theta_0\|_F/\|\theta_0\|_F`
(observer ``motion``); the figure fits the exponent :math:`e` of :math:`D_m \propto m^{e}`
(:func:`~meanfield.figures._figure.fit_slope`, with its standard error) and compares it with the theory below,
cell by cell. The whole grid is one Dask sweep over ``model.alpha`` × ``model.beta`` × ``model.m``.

Theory (this parameterisation)
------------------------------
Two exponents govern the dynamics at initialisation (docs/conventions.md,
"Neural tangent kernel and the linearised (lazy) dynamics"):

* the **output rate** :math:`\kappa = m^{\beta - 2\alpha + 1}`: the tangent kernel is
  :math:`\Theta = \eta m^{\beta-2\alpha}\sum_j \nabla\varphi_j^\top\nabla\varphi_j \approx \kappa\,\Theta^*`, and
  :math:`\dot f = -\frac1n \Theta (f - y)`;
* the **particle speed** :math:`m^{\beta-\alpha}`: :math:`\dot\theta_j = -m^{\beta-\alpha}\,\frac1n\sum_i
  (f(x_i) - y_i)\nabla_\theta\varphi(\theta_j; x_i)` with an :math:`O(1)` residual at the start.

The relu is 2-homogeneous, so with :math:`\theta = s\tilde\theta`, :math:`s = m^{(\alpha-1)/2}`, the network is
the mean-field network :math:`\frac1m\sum_j \tilde a_j \mathrm{relu}(\tilde w_j\cdot x/\sqrt d)` of particles
initialised at scale :math:`\tilde\tau = m^{(1-\alpha)/2}`, run at the mean-field rate times :math:`m^{\beta-\alpha}`;
the relative displacement is the same in both variables. This is Chizat–Oyallon–Bach's scale :math:`\tau` again:
:math:`\alpha < 1` is a large initialisation (lazy), :math:`\alpha > 1` a vanishing one, :math:`\alpha = 1` the
mean-field scale. Hence, at fixed :math:`T` as :math:`m \to \infty`:

**Stable region** :math:`\beta \le \beta^*(\alpha) = \min(2\alpha - 1, \alpha)`: the particles move at speed
:math:`m^{\beta-\alpha}` for a time :math:`O(1)` with an :math:`O(1)` residual, so

.. math:: e = \beta - \alpha .

Its boundary has three parts:

* the **lazy line** :math:`\beta = 2\alpha - 1`, :math:`\alpha < 1` (:math:`\kappa = 1`): the outputs train at an
  :math:`O(1)` rate along the fixed kernel :math:`\Theta^*` while each particle moves :math:`m^{\alpha-1}`
  (the NTK preset is :math:`(\alpha, \beta) = (1/2, 0)`: :math:`e = -1/2`);
* the **mean-field point** :math:`(1, 1)`: :math:`\kappa = 1` and particles move :math:`O(1)`, :math:`e = 0`
  (Wasserstein gradient flow);
* the **condensed line** :math:`\beta = \alpha > 1`: the particles start at the vanishing scale
  :math:`\tilde\tau \to 0`, where the dynamics is linear, :math:`\tilde\theta_t \approx e^{tA}\tilde\theta_0`, and
  grow by an :math:`O(1)` factor in time :math:`T`: :math:`e = 0`, with the outputs still
  :math:`O(\tilde\tau^2)` (the escape from the saddle at 0 takes a time :math:`\propto \log(1/\tilde\tau)
  \propto \log m`).

Below the boundary (:math:`\beta < \beta^*`) is the **frozen** interior: the outputs move
:math:`\kappa \to 0` in time :math:`T`; the particles still move :math:`m^{\beta-\alpha}`.

**Unstable region** :math:`\beta > \beta^*(\alpha)`: under gradient *flow* the fit happens in a time that
vanishes with :math:`m` (:math:`\kappa \to \infty` for :math:`\alpha < 1`; the escape time
:math:`m^{\alpha-\beta}\log m \to 0` for :math:`\alpha > 1`), and the displacement saturates at its value at
convergence: :math:`e_{\mathrm{GF}} = \alpha - 1` for :math:`\alpha \le 1` (lazy convergence: a relative motion
:math:`O(\tilde\tau^{-2})`) and :math:`e_{\mathrm{GF}} = (\alpha - 1)/2` for :math:`\alpha > 1` (the particles must
grow from :math:`\tilde\tau` to :math:`O(1)`). Under gradient *descent* with a fixed step the stiffness grows
without bound: the kernel (:math:`\kappa` for :math:`\alpha \le 1`, :math:`m^{\beta-\alpha}` once the particles
have grown for :math:`\alpha > 1`) passes :math:`h\lambda_{\max}/n = 2` at some width, beyond which the run
diverges (the pipeline marks it ``diverged``). How soon depends on :math:`h` and on the excess
:math:`\beta - \beta^*`, so the figure reports, per cell, the first width that diverged.

What is compared
----------------
Per cell: the exponent fitted over the widths that completed (at least three, all below the first divergence),
against :math:`\beta - \alpha` in the stable region and :math:`e_{\mathrm{GF}}` in the unstable one. Claims:
the largest :math:`|e - (\beta - \alpha)|` over the stable cells; the exponents of the NTK preset (1/2, 0) and
of the mean-field preset (1, 1); the number of diverged runs in the stable region (none expected). The largest
:math:`|e - e_{\mathrm{GF}}|` over the unstable cells where no width diverged is reported, not claimed: those
cells approach the saturation only through a slow crossover.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

TITLE = "The scaling phase diagram"
REFERENCE = ("Chizat & Bach (2018), Chizat, Oyallon & Bach (2019), Yang & Hu (2021), Luo et al. (2021): the "
             "lazy / mean-field / unstable regimes of width scalings")

__all__ = ["compute", "plot", "theory"]


def boundary(alpha) -> np.ndarray:
    r"""The stability boundary :math:`\beta^*(\alpha) = \min(2\alpha - 1, \alpha)`."""
    a = np.asarray(alpha, float)
    return np.minimum(2 * a - 1, a)


def theory(alpha: float, beta: float) -> tuple:
    """``(region, exponent)``: the region (``lazy``, ``mean-field``, ``condensed``, ``frozen`` or ``unstable``)
    and the theoretical displacement exponent of :math:`(\\alpha, \\beta)` (module docstring).

    >>> theory(0.5, 0.0), theory(1.0, 1.0), theory(1.5, 0.5), theory(0.5, 1.0), theory(1.5, 2.0)
    (('lazy', -0.5), ('mean-field', 0.0), ('frozen', -1.0), ('unstable', -0.5), ('unstable', 0.25))
    """
    eps = 1e-9
    b_star = float(boundary(alpha))
    if beta > b_star + eps:
        return "unstable", (alpha - 1.0) if alpha <= 1.0 else (alpha - 1.0) / 2.0
    if beta < b_star - eps:
        return "frozen", beta - alpha
    if abs(alpha - 1.0) <= eps:
        return "mean-field", beta - alpha
    return ("lazy" if alpha < 1.0 else "condensed"), beta - alpha


def compute(fig) -> dict:
    """One Dask sweep over alpha x beta x m; exponents fitted per cell from the index's final displacements."""
    from ._figure import compact, fit_slope

    p = fig.params
    alphas = [float(a) for a in p["alphas"]]
    betas = [float(b) for b in p["betas"]]
    widths = [int(m) for m in p["widths"]]
    idx = fig.sweep("sweep", grid={"model.alpha": alphas, "model.beta": betas, "model.m": widths},
                    seeds=int(p["seeds"]))
    c = idx.columns
    shape = (len(alphas), len(betas), len(widths))
    disp = np.full(shape + (int(p["seeds"]),), np.nan)
    diverged = np.zeros(shape, bool)
    failed = 0
    for row in range(len(idx)):
        i, j = alphas.index(float(c["model.alpha"][row])), betas.index(float(c["model.beta"][row]))
        k, s = widths.index(int(c["model.m"][row])), int(c["seed"][row])
        st = str(c["status"][row])
        if st == "completed":
            disp[i, j, k, s] = float(c["displacement"][row])
        elif st == "diverged":
            diverged[i, j, k] = True
        else:
            failed += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a width whose runs all diverged: nan
        mean_disp = np.nanmean(np.where(diverged[..., None], np.nan, disp), axis=-1)
    cells = []
    exps, errs = np.full(shape[:2], np.nan), np.full(shape[:2], np.nan)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            region, e_th = theory(a, b)
            div_k = np.flatnonzero(diverged[i, j])
            first_div = int(widths[div_k[0]]) if div_k.size else None
            upto = div_k[0] if div_k.size else len(widths)
            x, y = np.asarray(widths[:upto], float), mean_disp[i, j, :upto]
            ok = np.isfinite(y) & (y > 0)
            slope, err = fit_slope(x[ok], y[ok]) if ok.sum() >= 3 else (math.nan, math.nan)
            exps[i, j], errs[i, j] = slope, err
            cells.append({"alpha": a, "beta": b, "region": region, "theory": e_th, "exponent": slope,
                          "stderr": err, "first_diverged_width": first_div, "n_fitted": int(ok.sum()),
                          "displacement": compact(mean_disp[i, j])})
    stable = [cl for cl in cells if cl["region"] != "unstable"]
    unstable = [cl for cl in cells if cl["region"] == "unstable"]
    stable_err = [abs(cl["exponent"] - cl["theory"]) for cl in stable]
    stable_div = int(sum(diverged[alphas.index(cl["alpha"]), betas.index(cl["beta"])].sum() for cl in stable))
    gf = [abs(cl["exponent"] - cl["theory"]) for cl in unstable
          if cl["first_diverged_width"] is None and math.isfinite(cl["exponent"])]

    def cell(a, b):
        return next(cl for cl in cells if cl["alpha"] == a and cl["beta"] == b)

    ntk, mf = cell(0.5, 0.0), cell(1.0, 1.0)
    claims = {"stable_max_abs_error": max(stable_err) if stable_err else math.nan,
              "ntk_exponent": ntk["exponent"], "mean_field_exponent": mf["exponent"],
              "stable_runs_diverged": stable_div}
    gf_max = max(gf) if gf else math.nan
    n_unst_div = sum(cl["first_diverged_width"] is not None for cl in unstable)
    highlights = {"NTK preset (1/2, 0): exponent": ntk["exponent"], "NTK preset: standard error": ntk["stderr"],
                  "mean-field preset (1, 1): exponent": mf["exponent"], "mean-field preset: standard error":
                  mf["stderr"]}
    for a, b in p.get("named_cells", []):
        cl = cell(float(a), float(b))
        highlights[f"({a:g}, {b:g}) {cl['region']}: exponent (theory {cl['theory']:g})"] = cl["exponent"]
    highlights.update({
        "stable cells: largest |exponent - (beta - alpha)|": claims["stable_max_abs_error"],
        "stable cells: mean |exponent - (beta - alpha)|": float(np.nanmean(stable_err)) if stable_err else math.nan,
        "stable cells": len(stable), "unstable cells": len(unstable),
        "unstable cells that diverged at some width": n_unst_div,
        "unstable cells without divergence: largest |exponent - e_GF|": gf_max,
        "failed runs": failed})
    tab = fig.tables
    h, n_steps = float(tab["dynamics"]["dt"]), int(tab["run"]["n_steps"])
    sizes = (f"d = {tab['data']['d']}, n = {tab['data']['n_train']}, teacher of {tab['data']['k']} relu neurons, "
             f"m = {widths[0]}..{widths[-1]} ({len(widths)} widths), {len(alphas)} x {len(betas)} (alpha, beta), "
             f"{p['seeds']} seed(s), {n_steps} gradient steps of h = {h:g} (T = {n_steps * h:g})")
    return {"alphas": alphas, "betas": betas, "widths": widths, "cells": cells, "exponents": compact(exps),
            "stderr": compact(errs), "diverged": diverged.tolist(), "step": h, "n_steps": n_steps,
            "unstable_max_abs_error_gradient_flow": gf_max,
            "claims": claims, "highlights": highlights, "sizes": sizes}


def plot(numbers: dict, params: dict):
    """Three panels: the measured exponent over (alpha, beta) with the theoretical boundaries; measured against
    theory per cell; the displacement against m for a few named cells."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    from ._style import figure, finish

    fig, (ax, ax2, ax3) = figure(3, width=4.9, height=5.4)
    al, be = np.asarray(numbers["alphas"]), np.asarray(numbers["betas"])
    ex = np.asarray(numbers["exponents"], float)
    da, db = (al[1] - al[0]) if al.size > 1 else 0.25, (be[1] - be[0]) if be.size > 1 else 0.25
    edges_a = np.concatenate([al - da / 2, [al[-1] + da / 2]])
    edges_b = np.concatenate([be - db / 2, [be[-1] + db / 2]])
    lim = max(0.5, np.nanmax(np.abs(ex))) if np.isfinite(ex).any() else 1.0
    mesh = ax.pcolormesh(edges_a, edges_b, np.ma.masked_invalid(ex.T), cmap="coolwarm",
                         norm=TwoSlopeNorm(0.0, -lim, lim), shading="flat")
    fig.colorbar(mesh, ax=ax, label=r"measured exponent $e$ of $\|\theta_T-\theta_0\|/\|\theta_0\| \propto m^{e}$")
    for cl in numbers["cells"]:
        a, b = cl["alpha"], cl["beta"]
        e = cl["exponent"]
        if cl["first_diverged_width"] is not None:
            ax.add_patch(Rectangle((a - da / 2, b - db / 2), da, db, fill=False, hatch="///", ec="0.4", lw=0))
            txt = f"div\nm≥{cl['first_diverged_width']}"
            if e is not None and math.isfinite(e):
                txt = f"{e:.2f}\n" + txt
        else:
            txt = f"{e:.2f}\n({cl['theory']:.2f})" if e is not None and math.isfinite(e) else "n/a"
        ax.text(a, b, txt, ha="center", va="center", fontsize=5.2, zorder=6)
    aa = np.linspace(edges_a[0], edges_a[-1], 200)
    lo = aa <= 1
    ax.plot(aa[lo], 2 * aa[lo] - 1, "k-", lw=1.8, label=r"lazy line $\beta = 2\alpha-1$ (NTK at $\alpha=\frac{1}{2}$)")
    ax.plot(aa[~lo], aa[~lo], "k--", lw=1.8, label=r"condensed line $\beta=\alpha$ ($\alpha>1$)")
    ax.fill_between(aa, np.minimum(2 * aa - 1, aa), edges_b[-1], color="k", alpha=0.06, lw=0,
                    label=r"unstable: $\beta > \min(2\alpha-1, \alpha)$ (shaded)")
    ax.plot([0.5], [0.0], "s", mfc="none", mec="k", mew=1.2, ms=22, zorder=5, label="NTK preset (1/2, 0)")
    ax.plot([1.0], [1.0], "o", mfc="none", mec="k", mew=1.2, ms=22, zorder=5, label="mean-field preset (1, 1)")
    ax.set(xlim=(edges_a[0], edges_a[-1]), ylim=(edges_b[0], edges_b[-1]), xlabel=r"output exponent $\alpha$",
           ylabel=r"learning-rate exponent $\beta$",
           title="measured exponent (theory in brackets; below the lines: frozen,\n"
                 r"$e=\beta-\alpha$; hatched: gradient descent diverged from that width on)")
    ax.title.set_fontsize(8.5)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False, markerscale=0.35)
    # measured against theory
    colors = {"frozen": "#7f8c8d", "lazy": "#2471a3", "mean-field": "#c0392b", "condensed": "#7d3c98",
              "unstable": "#e67e22"}
    done = set()
    for cl in numbers["cells"]:
        e = cl["exponent"]
        if e is None or not math.isfinite(e) or cl["first_diverged_width"] is not None:
            continue
        r = cl["region"]
        label = {"unstable": r"unstable, no divergence: $e_{GF}$", "frozen": r"frozen: $\beta-\alpha$"}.get(
            r, f"{r}: " + r"$\beta-\alpha$")
        ax2.errorbar(cl["theory"], e, yerr=cl["stderr"] if cl["stderr"] is not None else 0, fmt="o", ms=4,
                     color=colors[r], label=None if r in done else label, alpha=0.85)
        done.add(r)
    t = np.array([c["theory"] for c in numbers["cells"]], float)
    span = [np.nanmin(t) - 0.2, np.nanmax(t) + 0.2]
    ax2.plot(span, span, "k:", lw=1, label="measured = theory")
    c = numbers["claims"]
    ax2.set(xlabel="theoretical exponent", ylabel="measured exponent (± standard error of the fit)",
            title=f"per cell: largest stable |error| {c['stable_max_abs_error']:.3f}\n"
                  f"unstable without divergence, vs $e_{{GF}}$: {numbers['unstable_max_abs_error_gradient_flow']:.3f}")
    ax2.title.set_fontsize(8.5)
    finish(ax2)
    # displacement against m
    m = np.asarray(numbers["widths"], float)
    shown = [tuple(x) for x in params.get("named_cells", [])]
    for cl in numbers["cells"]:
        if (cl["alpha"], cl["beta"]) not in shown:
            continue
        y = np.asarray(cl["displacement"], float)
        col = colors[cl["region"]]
        line, = ax3.plot(m, y, "-o", ms=3.5, color=col)
        e, s = cl["exponent"], cl["stderr"]
        es = f"{e:.3f} ± {s:.3f}" if e is not None and math.isfinite(e) else "n/a"
        line.set_label(f"({cl['alpha']:g}, {cl['beta']:g}) {cl['region']}: slope {es} (theory {cl['theory']:g})")
        ok = np.isfinite(y)
        if ok.any():
            k0 = np.flatnonzero(ok)[0]
            ax3.plot(m, y[k0] * (m / m[k0]) ** cl["theory"], ":", color=col, lw=0.9)
    ax3.set(xscale="log", yscale="log", xlabel="width m (neurons)",
            ylabel=r"relative displacement $\|\theta_T-\theta_0\|_F/\|\theta_0\|_F$",
            title="displacement at time T against m\n(dotted: theory slopes)")
    ax3.title.set_fontsize(8.5)
    finish(ax3, legend=False)
    ax3.legend(fontsize=6.2, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)
    fig.suptitle(f"Scaling phase diagram: f = m^-alpha sum_j a_j relu(w_j.x/sqrt d), trained at rate m^beta; "
                 f"NTK exponent {c['ntk_exponent']:.3f} (theory -0.5), mean-field {c['mean_field_exponent']:.3f} "
                 f"(theory 0)\n{numbers['sizes']}", fontsize=8.5)
    return fig
