r"""Figure 4. The network against its linearisation under NTK scaling (Lee et al. 2019).

Under NTK scaling, :math:`f(x;\theta) = m^{-1/2}\sum_j a_j\sigma(w_j\cdot x/\sqrt d)`, gradient flow on the
empirical risk :math:`R = \frac1{2n}\sum_i (f(x_i) - y_i)^2` is compared with the gradient flow of the network
linearised at its initial particles :math:`\theta^0`,

.. math:: f^{\rm lin}(x;\theta) = f(x;\theta^0) + m^{-1/2}\sum_j \nabla_\theta\varphi(\theta^0_j; x)\cdot
          (\theta_j - \theta^0_j),

whose outputs obey :math:`\dot f^{\rm lin}_t = -\frac1n\Theta_0(X_\cdot, X)(f^{\rm lin}_t(X) - y)` exactly, with
the empirical tangent kernel :math:`\Theta_0` at initialisation (docs/conventions.md, "Linearised flow in
parameter space"). Each run is ``dynamics.kind = "linearized"`` (:func:`meanfield.run.run_config`): both flows from
the same particles, with the same integrator and step, in one file; the runs are a Dask sweep over widths and
seeds (:meth:`FigureRun.sweep`).

The library records the losses of both flows (observer ``risks``) but not their outputs, so the outputs are
computed here from the recorded particle snapshots: :math:`f_t = ` :func:`meanfield.model.outputs` of the
network's particles and :math:`f^{\rm lin}_t = ` :func:`meanfield.linearized.linearized_outputs` of the
linearised flow's particles (its own formula, at :math:`\theta^0` = the first snapshot), on the training and
test inputs. The gap is :math:`\max_t \max_x |f_t(x) - f^{\rm lin}_t(x)|` over the snapshots
:math:`t \le T` and the :math:`n + n_{\rm test}` inputs.

The exact function-space solutions (:func:`meanfield.linearized.function_space`): with the analytic kernel
:math:`\Theta^*` (:func:`meanfield.ntk.analytic_ntk`, the :math:`m\to\infty` limit) and :math:`f_0 = 0` (the
symmetric initialisation makes :math:`f_0 \equiv 0` at every width), and with the empirical kernel at
initialisation of the widest network (:func:`meanfield.linearized.function_space_from_particles`), whose outputs
the linearised flow must reproduce up to the integrator's error (printed).

Activation: relu. Theory: Lee et al. (2019, Theorem 2.1) bound :math:`\sup_t |f_t - f^{\rm lin}_t|` by
:math:`O(m^{-1/2})`. Measured here, the gap falls faster: its slope is about :math:`-3/4`. A heuristic: the
difference is driven by the change of the tangent kernel (:math:`\frac{d}{dt}(f - f^{\rm lin}) =
-\frac1n\Theta_0 (f - f^{\rm lin}) - \frac1n(\Theta_t - \Theta_0)(f - y)`) and by relu's second-order term, and both
lose their :math:`O(m^{-1/2})` part when the output weights have a symmetric law: the first-order terms are odd in
:math:`a_j` and cancel in the average over particles; what remains is :math:`O(m^{-1})` for smooth activations
and, for relu, the :math:`\sim m^{1/2}` neurons whose pattern flips, with random signs, :math:`O(m^{-3/4})`
(:mod:`meanfield.figures.width_displacement` measures the kernel change itself). A side check in the same
setting (widths 64 ... 4096, 3 seeds, t = 5, not part of this figure) gave gap slopes -1.2 for tanh and
-0.66 / -0.83 for relu with symmetric / i.i.d. initialisation.

Claims: the slope of the seed-mean gap against :math:`m` (log-log, :func:`~meanfield.figures._figure.fit_slope`,
with its standard error) is at most :math:`-1/2` plus a tolerance (Lee et al.'s bound; a slope of :math:`-1/2`
itself does not reproduce), and the largest relative difference :math:`\max_t |L_t - L^{\rm lin}_t| / L^{\rm
lin}_t` between the train and test losses of the widest network and of its linearisation, over every seed, is
below a stated tolerance.
"""

from __future__ import annotations

import numpy as np

TITLE = "The network against its linearisation under NTK scaling"
REFERENCE = ("Lee et al. (2019), Wide neural networks of any depth evolve as linear models under gradient "
             "descent, Fig. 1 and Theorem 2.1 (two-layer analogue)")

__all__ = ["compute", "plot", "output_gap"]

_MODEL_KEYS = ("d", "m", "activation", "scaling", "bias", "sigma_a", "sigma_w", "sigma_b", "symmetric", "dtype")


def output_gap(theta, theta_lin, X, model) -> np.ndarray:
    r""":math:`\max_x |f(x; \theta_t) - f^{\rm lin}(x; \theta^{\rm lin}_t)|` at every snapshot.

    Parameters
    ----------
    theta, theta_lin : ndarray, shape (T, m, p)
        Snapshots of the network's particles and of the linearised flow's particles; ``theta_lin[0]`` is the
        linearisation point :math:`\theta^0`.
    X : ndarray, shape (n, d)
    model : Model

    Returns
    -------
    ndarray, shape (T,)
    """
    from ..linearized import linearized_outputs
    from ..model import outputs

    theta0 = theta_lin[0]
    return np.array([np.max(np.abs(outputs(a, X, model) - linearized_outputs(b, theta0, X, model)))
                     for a, b in zip(theta, theta_lin)])


def compute(fig) -> dict:
    """Sweep widths x seeds of linearised runs; outputs from the particle snapshots; exact kernel solutions."""
    from ..data import from_recipe
    from ..linearized import function_space, function_space_from_particles, linearized_outputs
    from ..model import Model
    from ..ntk import analytic_ntk
    from ..trajectory import load
    from ._figure import compact, fit_slope

    p = fig.params
    widths, seeds = [int(m) for m in p["widths"]], [int(s) for s in p["seeds"]]
    idx = fig.sweep("sweep", zipped={"model.m": widths}, grid={"model.seed": seeds})
    col = idx.columns
    bad = col["status"] != "completed"
    if bad.any():
        raise RuntimeError(f"{int(bad.sum())} flows of the sweep did not complete: " + "; ".join(set(col["error"][bad])))
    dyn = None  # the dynamics as recorded in the files (Dynamics.describe(): every key, defaults included)
    gaps = np.full((len(widths), len(seeds)), np.nan)
    rel_loss = np.full((len(widths), len(seeds)), np.nan)
    curves, data, fs_check = {}, None, {}
    for row in np.flatnonzero(col["flow"] == "neurons"):
        m, seed = int(col["model.m"][row]), int(col["model.seed"][row])
        i, k = widths.index(m), seeds.index(seed)
        with load(idx.path(row)) as tr:
            if data is None:
                data = from_recipe(tr.data["recipe"])
                X_all = np.vstack([data.X, data.X_test])
            model = Model(**{key: tr.model[key] for key in _MODEL_KEYS})
            dyn = dyn or dict(tr.dynamics)
            lin = tr.flow("linearized")
            times = np.asarray(tr.times, float)
            theta, theta_lin = tr.particles.read(), lin.particles.read()
            losses = {f"{label}_{key}": np.asarray(fl.observables[key].value, float)
                      for label, fl in (("net", tr), ("lin", lin)) for key in ("train_loss", "test_loss")}
        gaps[i, k] = float(output_gap(theta, theta_lin, X_all, model).max())
        rel_loss[i, k] = max(float(np.max(np.abs(losses[f"net_{key}"] - losses[f"lin_{key}"]) / losses[f"lin_{key}"]))
                             for key in ("train_loss", "test_loss"))
        if seed == seeds[0] and m in p["loss_widths"]:
            curves[str(m)] = {"times": times, **{key: compact(v) for key, v in losses.items()}}
        if seed == seeds[0] and m == widths[-1]:  # the linearised flow against the exact solution, same kernel
            predict = function_space_from_particles(theta_lin[0], data.X, data.y, data.X_test, activation=model.activation,
                                                    scaling="ntk", lr=dyn["lr"], layer_lr=tuple(dyn["layer_lr"]))
            pred = predict(times)
            flow_out = np.array([np.concatenate([linearized_outputs(th, theta_lin[0], data.X, model),
                                                 linearized_outputs(th, theta_lin[0], data.X_test, model)])
                                 for th in theta_lin])
            exact_out = np.concatenate([pred.train, pred.test], axis=1)
            fs_check = {"m": m, "max_abs_output_difference": float(np.max(np.abs(flow_out - exact_out))),
                        "train_loss": compact(0.5 * np.mean((pred.train - data.y) ** 2, axis=1)),
                        "test_loss": compact(0.5 * np.mean((pred.test - data.y_test) ** 2, axis=1)), "times": times}
    # the m -> infinity limit: analytic kernel, f_0 = 0 (symmetric initialisation)
    t_end = float(fig.tables["run"]["t_end"])
    t_fine = np.linspace(0.0, t_end, 201)
    kw = dict(activation=model.activation, lr=dyn["lr"], layer_lr=tuple(dyn["layer_lr"]), sigma_a=model.sigma_a,
              sigma_w=model.sigma_w)
    K = analytic_ntk(data.X, **kw)
    pred = function_space(K, data.y)(t_fine, analytic_ntk(data.X_test, data.X, **kw))
    analytic = {"times": t_fine, "train_loss": compact(0.5 * np.mean((pred.train - data.y) ** 2, axis=1)),
                "test_loss": compact(0.5 * np.mean((pred.test - data.y_test) ** 2, axis=1))}
    mean, std = gaps.mean(axis=1), gaps.std(axis=1, ddof=1) if len(seeds) > 1 else np.zeros(len(widths))
    slope, err = fit_slope(widths, mean)
    widest_rel = float(rel_loss[-1].max())
    highlights = {"slope of max_t |f - f_lin| against m": slope, "standard error of the slope": err}
    for m in (widths[0], widths[-1]):
        highlights[f"max_t |f - f_lin| at m = {m} (mean over seeds)"] = float(mean[widths.index(m)])
    highlights[f"max_t relative loss difference, network vs linearisation, m = {widths[-1]}"] = widest_rel
    highlights[f"linearised flow vs exact empirical-kernel solution, m = {widths[-1]}: max output difference"] = \
        fs_check["max_abs_output_difference"]
    highlights["final train loss, analytic kernel (m = infinity)"] = float(analytic["train_loss"][-1])
    highlights["final test loss, analytic kernel (m = infinity)"] = float(analytic["test_loss"][-1])
    t = fig.tables
    steps = int(round(t_end / dyn["dt"]))
    setting = (f"d = {t['data']['d']}, n = {t['data']['n_train']}, n_test = {t['data']['n_test']}, relu teacher of "
               f"k = {t['data']['k']}; relu student, NTK scaling, symmetric init (f_0 = 0); lr {dyn['lr']:g}, "
               f"{dyn['integrator']} step {dyn['dt']:g} to t = {t_end:g} ({steps} steps)")
    return {"widths": widths, "seeds": seeds, "gaps": compact(gaps), "gap_mean": mean, "gap_std": std,
            "slope": slope, "stderr": err, "rel_loss": compact(rel_loss), "curves": curves, "analytic": analytic,
            "empirical_solution": fs_check, "setting": setting,
            "claims": {"gap_slope": slope, "widest_loss_relative_difference": widest_rel},
            "highlights": highlights,
            "sizes": f"m = {widths[0]} ... {widths[-1]} ({len(widths)} widths), {len(seeds)} seeds per width; {setting}"}


def plot(numbers: dict, params: dict):
    """Train and test loss against t (network, linearisation, exact kernel solutions); the gap against m."""
    import matplotlib

    from ._style import figure, finish

    fig, axes = figure(3, width=4.9, height=4.6)
    widths = sorted(int(m) for m in numbers["curves"])
    cmap = matplotlib.colormaps["viridis"]
    colors = {m: cmap(0.85 * i / max(1, len(widths) - 1)) for i, m in enumerate(widths)}
    an, emp = numbers["analytic"], numbers["empirical_solution"]
    for ax, key, name in ((axes[0], "train_loss", "train"), (axes[1], "test_loss", "test")):
        for m in widths:
            c = numbers["curves"][str(m)]
            ax.plot(c["times"], c[f"net_{key}"], "-", color=colors[m], lw=1.4, label=f"network, m = {m}")
            ax.plot(c["times"], c[f"lin_{key}"], "o", mfc="none", color=colors[m], ms=4,
                    label=f"linearised flow, m = {m}")
        ax.plot(emp["times"], emp[key], "x", color="#c0392b", ms=5,
                label=f"exact solution, empirical kernel at init (m = {emp['m']})")
        ax.plot(an["times"], an[key], "k--", lw=1.0, label="exact solution, analytic kernel (m = infinity)")
        ax.set(yscale="log", xlabel="time t (gradient steps x step size)", ylabel=f"{name} loss (1/2) mean squared error",
               title=f"{name} loss, seed {numbers['seeds'][0]}")
        finish(ax)
        ax.legend(fontsize=6)
    ax = axes[2]
    m = np.asarray(numbers["widths"], float)
    gaps = np.asarray(numbers["gaps"], float)
    mean, std = np.asarray(numbers["gap_mean"], float), np.asarray(numbers["gap_std"], float)
    for k in range(gaps.shape[1]):
        ax.plot(m, gaps[:, k], ".", color="0.6", ms=4, label="single seeds" if k == 0 else None)
    ax.errorbar(m, mean, yerr=std, fmt="o", color="#2471a3", ms=5, capsize=2,
                label=f"mean over {gaps.shape[1]} seeds (± std)")
    b, err = numbers["slope"], numbers["stderr"]
    a = np.mean(np.log(mean)) - b * np.mean(np.log(m))
    ax.plot(m, np.exp(a + b * np.log(m)), "-", color="#2471a3", label=f"fitted slope {b:.3f} ± {err:.3f}")
    a_th = np.mean(np.log(mean)) + 0.5 * np.mean(np.log(m))
    ax.plot(m, np.exp(a_th - 0.5 * np.log(m)), "k:", label="bound O(m^-1/2) (Lee et al. 2019)")
    a_h = np.mean(np.log(mean)) + 0.75 * np.mean(np.log(m))
    ax.plot(m, np.exp(a_h - 0.75 * np.log(m)), "--", color="0.5", label="slope -3/4 (relu pattern flips, heuristic)")
    ax.set(xscale="log", yscale="log", xlabel="width m (neurons)",
           ylabel=r"$\max_{t\leq T}\max_x |f_t(x) - f^{\rm lin}_t(x)|$ (output units)",
           title="network vs linearisation, train + test inputs")
    ax.set_xscale("log", base=2)
    finish(ax)
    fig.suptitle(f"The network against its linearisation under NTK scaling (relu): max relative loss difference at "
                 f"m = {numbers['widths'][-1]}: {numbers['claims']['widest_loss_relative_difference']:.2g}\n"
                 f"{numbers['setting']}; widths {numbers['widths'][0]} ... {numbers['widths'][-1]}, "
                 f"{len(numbers['seeds'])} seeds", fontsize=9)
    return fig
