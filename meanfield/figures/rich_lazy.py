r"""Rich vs lazy: the same initial particles trained under two scalings.

Three panels: (a) train and test risk against time; (b) how far the particle measure moves, :math:`W_2(\mu_t, \mu_0)` (or the relative displacement
:math:`\|\theta_t-\theta_0\|_F/\|\theta_0\|_F` when W2 was not recorded) against time, with the early-time
log-log slope printed; (c) the
particles at the end of each run, each neuron drawn at (cosine of :math:`w_j` with its closest teacher neuron,
effective output weight :math:`|a_j|\,|w_j|/\sqrt d`), the initial particles in grey.
"""

from __future__ import annotations

import numpy as np

from typing import NamedTuple

from ._style import COLORS, LABELS, figure, finish, loglog_slope

__all__ = ["plot", "draw", "RunView"]


class RunView(NamedTuple):
    """What the figure needs of one flow: snapshot times (T,), observables (name -> (T,)), the initial and final
    particles (m, p), and the input dimension d."""

    times: np.ndarray
    observables: dict
    theta0: np.ndarray
    theta_end: np.ndarray
    d: int


def _teacher_geometry(theta, teacher, d):
    w = theta[:, 1 : 1 + d]
    wn = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300)
    ts = teacher[:, 1 : 1 + d]
    tn = ts / np.linalg.norm(ts, axis=1, keepdims=True)
    cos = np.max(wn @ tn.T, axis=1)
    weight = np.abs(theta[:, 0]) * np.linalg.norm(w, axis=1) / np.sqrt(d)
    return cos, weight


def plot(runs: dict, path, *, teacher=None, title: str = "") -> str:
    """Draw the rich-vs-lazy figure (:func:`draw`) into the PNG ``path``; returns the path."""
    fig = draw(runs, teacher=teacher, title=title)
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def draw(runs: dict, *, teacher=None, title: str = ""):
    """Draw the rich-vs-lazy figure.

    Parameters
    ----------
    runs : dict
        ``scaling name -> run``: a :class:`RunView` (or anything with its attributes), whose observables hold
        ``train_loss`` (optionally ``test_loss``) or ``population_risk``, and ``w2_to_init`` or
        ``displacement``. A name ``"<preset>/linearized"`` is the linearised network, drawn dotted.
    teacher : ndarray, shape (k, p), optional
        Teacher neurons for panel (c); without it panel (c) shows :math:`|a_j|` against :math:`|w_j|/\\sqrt d`.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (ax_loss, ax_disp, ax_part) = figure(3)
    population = all("population_risk" in run.observables for run in runs.values())
    for name, run in runs.items():
        base, _, extra = name.partition("/")
        col = COLORS.get(base, "k")
        lab = LABELS.get(base, base) + (f", {LABELS.get(extra, extra)}" if extra else "")
        ls = ":" if extra else "-"
        t = np.asarray(run.times)
        obs = run.observables
        if "population_risk" in obs:
            ax_loss.plot(t[1:], obs["population_risk"][1:], color=col, ls=ls, label=f"{lab}: population")
        else:
            ax_loss.plot(t[1:], obs["train_loss"][1:], color=col, ls=ls, label=f"{lab}: train")
        if "test_loss" in obs:
            ax_loss.plot(t[1:], obs["test_loss"][1:], color=col, ls="--" if not extra else "-.",
                         label=f"{lab}: test")
        moved = np.asarray(obs["w2_to_init"] if "w2_to_init" in obs else obs["displacement"])
        early = slice(1, max(3, len(t) // 10))
        slope = loglog_slope(t[early], moved[early])
        ax_disp.plot(t[1:], moved[1:], color=col, ls=ls, label=f"{lab} (slope {slope:.2f} for t < {t[early][-1]:g})")
    for name, run in runs.items():
        if "/" in name:  # the linearised particles sit on their network's: panel (c) shows the networks
            continue
        col, lab = COLORS.get(name, "k"), LABELS.get(name, name)
        d = run.d
        if teacher is not None:
            x0, y0 = _teacher_geometry(run.theta0, teacher, d)
            x1, y1 = _teacher_geometry(run.theta_end, teacher, d)
        else:
            x0, y0 = np.linalg.norm(run.theta0[:, 1 : 1 + d], axis=1) / np.sqrt(d), np.abs(run.theta0[:, 0])
            x1, y1 = np.linalg.norm(run.theta_end[:, 1 : 1 + d], axis=1) / np.sqrt(d), np.abs(run.theta_end[:, 0])
        ax_part.scatter(x1, y1, s=6, color=col, alpha=0.6, label=f"{lab}, t = {run.times[-1]:g}")
    first = next(iter(runs.values()))
    ax_part.scatter(x0, y0, s=4, color="0.6", alpha=0.4, label="initial particles", zorder=0)
    ax_loss.set(xscale="log", yscale="log", xlabel="time t (units of 1/lr)",
                ylabel=r"population risk $\frac{1}{2}E_x(f(x)-f^*(x))^2$" if population else
                r"risk $\frac{1}{2n}\sum_i (f(x_i)-y_i)^2$",
                title="(a) population risk" if population else "(a) train and test risk")
    w2 = all("w2_to_init" in run.observables for run in runs.values())
    ax_disp.set(xscale="log", yscale="log", xlabel="time t (units of 1/lr)",
                ylabel=r"$W_2(\mu_t, \mu_0)$ (particle coordinates)" if w2 else
                r"relative displacement $\|\theta_t-\theta_0\|_F/\|\theta_0\|_F$",
                title="(b) how far the particle measure moves")
    if teacher is not None:
        ax_part.set(xlabel=r"cosine of $w_j$ with the closest teacher neuron",
                    ylabel=r"effective weight $|a_j|\,|w_j|/\sqrt{d}$", yscale="log",
                    title=f"(c) {first.theta0.shape[0]} particles at the end")
    else:
        ax_part.set(xlabel=r"$|w_j|/\sqrt{d}$", ylabel=r"$|a_j|$", title="(c) particles at the end")
    for ax in (ax_loss, ax_disp, ax_part):
        finish(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
