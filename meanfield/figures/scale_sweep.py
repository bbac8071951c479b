r"""Figure 2. Test loss against the scale :math:`\tau` (Chizat, Oyallon & Bach 2019, Fig. 3 setting).

A two-layer relu student :math:`f(x) = \frac1m \sum_j a_j\,\mathrm{relu}(w_j\cdot x/\sqrt d)` (mean-field
scaling, docs/conventions.md) of m = 50 neurons learns a relu teacher of three neurons in d = 100 dimensions
(inputs uniform on the sphere of radius :math:`\sqrt d`, :math:`n` training and :math:`n` test points, no
noise). The initial particles are symmetric (pairs :math:`(a, w), (-a, w)`, so :math:`f_0 \equiv 0`) with
:math:`a_j, w_j \sim N(0, \tau^2)`. The relu is positively 2-homogeneous, :math:`f(\tau\theta) = \tau^2 f(\theta)`,
so :math:`\tau` is the laziness knob of Chizat–Oyallon–Bach: the tangent kernel at initialisation is
:math:`\Theta_0 \propto \tau^2` while the particles are :math:`O(\tau)`, and fitting the data moves them by a
relative amount :math:`O(\tau^{-2})` — small :math:`\tau` is the rich (feature-learning) regime, large
:math:`\tau` the lazy one.

Each run is full-batch gradient descent (Euler steps of the particle flow) with step
:math:`h(\tau) = \min(h_{\max}, h_0/\tau^2)` (:math:`h_{\max} = 10`, :math:`h_0 = 0.1`): the step is
proportional to :math:`1/\tau^2`, the inverse scale of the kernel, so every :math:`\tau \ge \sqrt{h_0/h_{\max}}`
trains the linearised model at the same rate per step. The figure is a Dask sweep
(:meth:`~meanfield.figures._figure.FigureRun.sweep`) over :math:`\tau` (zipped with its step) and seeds (the
initial particles; the data set is fixed).

For each run:

* the **end-of-training** test loss :math:`L_{\mathrm{test}}(t_N)`, :math:`\frac12\,\overline{(f - y)^2}` on the
  test set, and the **best during training**, :math:`\min_k L_{\mathrm{test}}(t_k)` over the snapshots;
* the **linearised (tangent) model** from the same initial particles,
  :math:`f^{\mathrm{lin}}_t = f_0 + \nabla_\theta f(\theta_0)\cdot(\theta_t - \theta_0)`, trained on the same
  data for the same time: its outputs are the exact function-space solution
  (:func:`meanfield.linearized.function_space`) with the empirical kernel :math:`\Theta_0` of the run's initial
  particles (read back from its file), evaluated at the snapshot times :math:`t_k = k h`. This is the gradient
  flow of the linearised model; gradient descent with step :math:`h` multiplies eigenmode :math:`\lambda` by
  :math:`(1 - h\lambda/n)^k` instead of :math:`e^{-h\lambda k/n}`, a relative difference of order
  :math:`k (h\lambda/n)^2` on the modes still moving (:math:`hk\lambda/n \approx 1`), i.e.
  :math:`O(h\lambda_{\max}/n)`: the JSON records :math:`\max_\tau h\lambda_{\max}(\Theta_0)/n` (also the
  stability check of the step: gradient descent on the linear model diverges above 2);
* the relative displacement :math:`\|\theta_N - \theta_0\|_F/\|\theta_0\|_F` and the status (a diverged run is
  counted and left out of the means).

Plotted against :math:`\tau` (log axis): mean over seeds with :math:`\pm 1` standard-deviation bands of the three
losses, and the relative displacement on a second panel.

Claims (COB 2019, Fig. 3): small :math:`\tau` generalises much better than large :math:`\tau`
(``lazy_over_best_test_loss``: the mean end-of-training test loss at the largest :math:`\tau` over the smallest
mean end-of-training test loss over the sweep), and at large :math:`\tau` the network is its linearisation
(``lazy_linearized_gap``: :math:`|L - L^{\mathrm{lin}}|/L^{\mathrm{lin}}` of the mean end-of-training test
losses at the largest :math:`\tau`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

TITLE = "Test loss against the scale"
REFERENCE = "Chizat, Oyallon & Bach (2019), On Lazy Training in Differentiable Programming, Fig. 3"

__all__ = ["compute", "plot", "scales", "step_for"]


def scales(params: dict) -> np.ndarray:
    """The scales :math:`\\tau = 10^{s}` for ``s`` in ``linspace(log10_min, log10_max, n_scales)``."""
    return 10.0 ** np.linspace(params["log10_scale_min"], params["log10_scale_max"], int(params["n_scales"]))


def step_for(tau: float, params: dict) -> float:
    """The gradient-descent step :math:`\\min(h_{\\max}, h_0/\\tau^2)` of scale ``tau``."""
    return float(min(params["step_max"], params["step"] / tau**2))


def _linearized(tr, data, times):
    """Test and train loss of the linearised model of a run's initial particles at ``times``, and
    :math:`\\lambda_{\\max}(\\Theta_0)`."""
    from ..linearized import function_space
    from ..model import Model, outputs
    from ..ntk import empirical_ntk

    md = tr.model
    theta0 = np.asarray(tr.particles[0], float)
    dyn = tr.config["dynamics"]
    kw = dict(activation=md["activation"], scaling=md["scaling"], lr=dyn["lr"], layer_lr=tuple(dyn["layer_lr"]))
    model = Model(d=int(md["d"]), m=int(md["m"]), activation=md["activation"], scaling=md["scaling"])
    K = empirical_ntk(theta0, data.X, **kw)
    Ks = empirical_ntk(theta0, data.X_test, data.X, **kw)
    solve = function_space(K, data.y, outputs(theta0, data.X, model))
    pred = solve(np.asarray(times, float), Ks, outputs(theta0, data.X_test, model))
    test = 0.5 * np.mean((pred.test - data.y_test[None]) ** 2, axis=1)
    train = 0.5 * np.mean((pred.train - data.y[None]) ** 2, axis=1)
    return test, train, float(np.linalg.eigvalsh(K)[-1])


def _stats(values: np.ndarray) -> tuple:
    """Mean and sample standard deviation over seeds (axis 1), ignoring nan (diverged runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a scale whose runs all diverged: nan
        mean = np.nanmean(values, axis=1)
        n = np.sum(np.isfinite(values), axis=1)
        std = np.where(n > 1, np.nanstd(values, axis=1, ddof=1), np.nan)
    return mean, std


def compute(fig) -> dict:
    """Sweep over (tau, step) and seeds on Dask; read every run's test-loss series and initial particles back."""
    from ..data import from_recipe
    from ._figure import compact

    p = fig.params
    taus = scales(p)
    steps = [step_for(t, p) for t in taus]
    n_seeds = int(p["seeds"])
    idx = fig.sweep("sweep", zipped={"model.sigma_a": [float(t) for t in taus],
                                     "model.sigma_w": [float(t) for t in taus], "dynamics.dt": steps},
                    seeds=n_seeds)
    cols = idx.columns
    shape = (len(taus), n_seeds)
    final, best, lin_final, lin_best, disp = (np.full(shape, np.nan) for _ in range(5))
    train_final, lin_train_final = np.full(shape, np.nan), np.full(shape, np.nan)
    status = np.full(shape, "", dtype=object)
    lam_step = np.full(shape, np.nan)
    data = None
    for row in range(len(idx)):
        i = int(np.argmin(np.abs(np.log(taus / float(cols["model.sigma_a"][row])))))
        s = int(cols["seed"][row])
        status[i, s] = str(cols["status"][row])
        if status[i, s] not in ("completed", "diverged"):
            continue
        with idx.trajectory(row) as tr:
            if data is None:
                data = from_recipe(tr.data["recipe"])
            obs = tr.observables
            times = np.asarray(tr.times, float)
            test = np.asarray(obs["test_loss"].value, float)
            lin_test, lin_train, lam = _linearized(tr, data, times)
            lam_step[i, s] = steps[i] * lam / data.X.shape[0]
            lin_final[i, s], lin_best[i, s] = lin_test[-1], lin_test.min()
            lin_train_final[i, s] = lin_train[-1]
            if status[i, s] == "completed":
                final[i, s], best[i, s] = test[-1], test.min()
                train_final[i, s] = float(np.asarray(obs["train_loss"].value)[-1])
                disp[i, s] = float(np.asarray(obs["displacement"].value)[-1])
    series = {}
    for name, arr in (("test_final", final), ("test_best", best), ("lin_test_final", lin_final),
                      ("lin_test_best", lin_best), ("displacement", disp), ("train_final", train_final),
                      ("lin_train_final", lin_train_final)):
        mean, std = _stats(arr)
        series[name] = {"mean": compact(mean), "std": compact(std), "runs": compact(arr)}
    m_fin = series["test_final"]["mean"]
    lazy, lazy_lin = float(m_fin[-1]), float(series["lin_test_final"]["mean"][-1])
    ok = np.isfinite(m_fin)
    best_i = int(np.nanargmin(m_fin)) if ok.any() else 0
    claims = {"lazy_over_best_test_loss": lazy / float(m_fin[best_i]) if ok.any() else math.nan,
              "lazy_linearized_gap": abs(lazy - lazy_lin) / lazy_lin}
    n_div = int(np.sum(status == "diverged"))
    n_failed = int(np.sum((status != "completed") & (status != "diverged")))
    n_steps = int(fig.tables["run"]["n_steps"])
    tab = fig.tables
    highlights = {
        f"best mean end-of-training test loss (tau = {taus[best_i]:.3g})": float(m_fin[best_i]),
        f"mean end-of-training test loss at the largest tau = {taus[-1]:.3g}": lazy,
        f"linearised model: mean end-of-training test loss at tau = {taus[-1]:.3g}": lazy_lin,
        f"linearised model: mean end-of-training test loss at tau = {taus[best_i]:.3g}":
            float(series["lin_test_final"]["mean"][best_i]),
        f"mean best-during-training test loss at tau = {taus[best_i]:.3g}": float(series["test_best"]["mean"][best_i]),
        f"mean relative displacement at tau = {taus[best_i]:.3g}": float(series["displacement"]["mean"][best_i]),
        f"mean relative displacement at tau = {taus[-1]:.3g}": float(series["displacement"]["mean"][-1]),
        "test loss of the zero predictor, mean(y_test^2)/2": float(0.5 * np.mean(data.y_test**2)),
        "largest step x lambda_max(Theta_0)/n (linear GD stable below 2)": float(np.nanmax(lam_step)),
        "fitted exponent of the mean relative displacement against tau, tau >= 1 (lazy theory: -2)":
            _lazy_exponent(taus, series["displacement"]["mean"])[0],
        "diverged runs": n_div,
        "failed runs": n_failed,
    }
    d, n, m = tab["data"]["d"], tab["data"]["n_train"], tab["model"]["m"]
    sizes = (f"d = {d}, n_train = {n}, n_test = {tab['data']['n_test']}, teacher of {tab['data']['k']} relu neurons, "
             f"m = {m}, {len(taus)} values of tau in [10^{p['log10_scale_min']:g}, 10^{p['log10_scale_max']:g}], "
             f"{n_seeds} seeds, {n_steps} gradient steps of min({p['step_max']:g}, {p['step']:g}/tau^2)")
    return {"taus": compact(taus), "steps": compact(np.asarray(steps)), "series": series,
            "status": status.tolist(), "lambda_step": compact(lam_step), "n_steps": n_steps,
            "zero_predictor_loss": float(0.5 * np.mean(data.y_test**2)),
            "claims": claims, "highlights": highlights, "sizes": sizes}


def _lazy_exponent(taus, displacement) -> tuple:
    """Fitted exponent (and standard error) of the mean relative displacement against tau over tau >= 1."""
    from ._figure import fit_slope

    taus, displacement = np.asarray(taus, float), np.asarray(displacement, float)
    keep = taus >= 1
    return fit_slope(taus[keep], displacement[keep])


def plot(numbers: dict, params: dict):
    """Two panels against tau: the test losses (network end / best, linearised end) with ±1 std bands, and the
    relative displacement."""
    from ._style import COLORS, figure, finish

    fig, (ax, ax2) = figure(2, width=5.2, height=4.2)
    taus = np.asarray(numbers["taus"], float)
    s = numbers["series"]
    lines = (("test_final", "network, end of training", COLORS["mean_field"], "-", "o"),
             ("test_best", "network, best during training", "#e67e22", "--", "s"),
             ("lin_test_final", "linearised (tangent) model, end of training", COLORS["linearized"], "-", "^"))
    for key, label, col, ls, mk in lines:
        mean = np.asarray(s[key]["mean"], float)
        std = np.nan_to_num(np.asarray(s[key]["std"], float))
        ax.plot(taus, mean, ls=ls, marker=mk, ms=4, color=col, label=label)
        ax.fill_between(taus, np.maximum(mean - std, 1e-12), mean + std, color=col, alpha=0.2, lw=0)
    ax.axhline(numbers["zero_predictor_loss"], color="0.5", ls=":", lw=1, label="zero predictor")
    ax.set(xscale="log", yscale="log", xlabel=r"scale $\tau$ of the initialisation ($a_j, w_j \sim N(0,\tau^2)$)",
           ylabel=r"test loss $\frac{1}{2}\,\overline{(f(x)-y)^2}$",
           title="test loss (mean over seeds, band: ±1 std)")
    finish(ax)
    d = np.asarray(s["displacement"]["mean"], float)
    dstd = np.nan_to_num(np.asarray(s["displacement"]["std"], float))
    ax2.plot(taus, d, "-o", ms=4, color=COLORS["mean_field"], label="network")
    ax2.fill_between(taus, np.maximum(d - dstd, 1e-12), d + dstd, color=COLORS["mean_field"], alpha=0.2, lw=0)
    ok = np.isfinite(d) & (taus >= 1)
    if ok.any():
        ref = d[ok][-1] * (taus / taus[ok][-1]) ** -2.0
        ax2.plot(taus[taus >= 0.3], ref[taus >= 0.3], "k:", lw=1, label=r"$\propto \tau^{-2}$ (lazy: COB)")
        slope, err = _lazy_exponent(taus, d)
        if math.isfinite(slope):
            ax2.plot([], [], " ", label=f"fitted exponent for tau >= 1: {slope:.2f} +/- {err:.2f}")
    ax2.set(xscale="log", yscale="log", xlabel=r"scale $\tau$",
            ylabel=r"relative displacement $\|\theta_T-\theta_0\|_F/\|\theta_0\|_F$",
            title="how far the particles moved")
    finish(ax2)
    c = numbers["claims"]
    n_div = sum(st == "diverged" for row in numbers["status"] for st in row)
    fig.suptitle(f"Test loss against the scale tau (Chizat-Oyallon-Bach Fig. 3 setting): lazy/best test loss "
                 f"{c['lazy_over_best_test_loss']:.3g}, network vs linearised at the largest tau "
                 f"{100 * c['lazy_linearized_gap']:.2g} %\n{numbers['sizes']}"
                 + (f"; {n_div} runs diverged" if n_div else ""), fontsize=8.5)
    return fig
