r"""Figure 1. Particle paths in the plane, rich vs lazy (Chizat, Oyallon & Bach 2019, Fig. 1 setting).

Inputs on the circle (d = 2), a relu teacher of three unit neurons, 15 training points, a student of m = 16
neurons under mean-field scaling with symmetric initialisation :math:`a_j, w_j \sim N(0, \tau^2)`, trained by
gradient descent at a small scale :math:`\tau = 0.1` (rich) and a large one :math:`\tau = 2` (lazy). The relu is
positively 2-homogeneous, :math:`f(\tau\theta) = \tau^2 f(\theta)`, so the initial scale is the laziness knob of
Chizat–Oyallon–Bach: a large :math:`\tau` fits the data by a small relative motion of the particles.

Each panel draws the path of every particle in the plane of :math:`|a_j| w_j/\sqrt d` (the map of
:mod:`meanfield.figures.animate`; red: :math:`a_j > 0`, blue: :math:`a_j < 0`), its start (open circle) and end
(dot), and the teacher's directions (dotted rays, crosses at :math:`|a^*_k| w^*_k/\sqrt d`).

Numbers: for each run the relative displacement :math:`\|\theta_T - \theta_0\|_F / \|\theta_0\|_F`, :math:`W_2(\mu_T,
\mu_0)`, train and test risk at the end; the fraction of the rich run's output mass
:math:`\sum_j |a_j||w_j|` within ``near_degrees`` of a teacher direction (of the sign of :math:`a_j` matching
the teacher's output weight) at the end. Claims: that fraction (rich: the mass ends on the teacher's directions)
and the ratio of the rich to the lazy relative displacement (lazy: the particles barely move).
"""

from __future__ import annotations

import math

import numpy as np

TITLE = "Particle paths in the plane, rich vs lazy"
REFERENCE = "Chizat, Oyallon & Bach (2019), On Lazy Training in Differentiable Programming, Fig. 1"

__all__ = ["compute", "plot", "mass_near_teacher"]


def mass_near_teacher(theta, teacher, d, degrees) -> float:
    r"""Fraction of :math:`\sum_j |a_j||w_j|` carried by particles whose direction :math:`w_j/|w_j|` is within
    ``degrees`` of the direction of a teacher neuron whose output weight has the sign of :math:`a_j`.

    >>> th = np.array([[1.0, 1.0, 0.0], [-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    >>> float(mass_near_teacher(th, np.array([[1.0, 2.0, 0.0], [-1.0, 0.0, 2.0]]), 2, 5.0))
    0.6666666666666666
    """
    theta, teacher = np.asarray(theta, float), np.asarray(teacher, float)
    w, tw = theta[:, 1 : 1 + d], teacher[:, 1 : 1 + d]
    wn = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300)
    tn = tw / np.linalg.norm(tw, axis=1, keepdims=True)
    same_sign = np.sign(theta[:, :1]) == np.sign(teacher[:, 0])[None, :]
    close = (wn @ tn.T >= math.cos(math.radians(degrees))) & same_sign
    mass = np.abs(theta[:, 0]) * np.linalg.norm(w, axis=1)
    return float(mass[close.any(axis=1)].sum() / mass.sum())


def compute(fig) -> dict:
    """Run the rich and the lazy training through the run pipeline; read their paths back from the files."""
    from ..trajectory import load
    from ._figure import compact
    from .animate import animate

    p = fig.params
    runs = {}
    files = {}
    for label, tau in zip(("rich", "lazy"), p["scales"]):
        dt = min(p["step_max"], p["step"] / tau**2)
        res = fig.run(f"tau_{tau:g}", {"model": {"sigma_a": tau, "sigma_w": tau}, "dynamics": {"dt": dt}})
        path = res.runs[0].path
        files[label] = path
        with load(path) as tr:
            theta = np.stack([tr.particles[i] for i in range(len(tr.particles))])
            obs = {k: np.asarray(s.value, float) for k, s in tr.observables.items()}
            d, teacher = int(tr.model["d"]), np.asarray(tr.data["teacher"], float)
        runs[label] = {"tau": tau, "dt": dt, "n_steps": int(res.config.total_steps), "times": tr.times,
                       "theta": compact(theta), "train_loss": compact(obs["train_loss"]),
                       "test_loss": compact(obs["test_loss"]),
                       "displacement": float(obs["displacement"][-1]), "w2": float(obs["w2_to_init"][-1]),
                       "mass_near_teacher": mass_near_teacher(theta[-1], teacher, d, p["near_degrees"])}
    ratio = runs["rich"]["displacement"] / runs["lazy"]["displacement"]
    gif = fig.out / f"{fig.name}.gif"
    animate([files["rich"], files["lazy"]], gif, frames=p["animation_frames"], fps=10, dpi=64,
            titles=[f"rich: tau = {runs['rich']['tau']:g}", f"lazy: tau = {runs['lazy']['tau']:g}"])
    m = runs["rich"]["theta"].shape[1]
    highlights = {}
    for label, r in runs.items():
        highlights[f"{label} (tau = {r['tau']:g}): relative displacement"] = r["displacement"]
        highlights[f"{label}: W2(mu_T, mu_0)"] = r["w2"]
        highlights[f"{label}: final train risk"] = float(r["train_loss"][-1])
        highlights[f"{label}: final test risk"] = float(r["test_loss"][-1])
        highlights[f"{label}: mass within {p['near_degrees']:g} deg of a teacher direction"] = r["mass_near_teacher"]
    return {"runs": runs, "teacher": teacher, "d": d, "m": m,
            "claims": {"rich_mass_on_teacher": runs["rich"]["mass_near_teacher"], "rich_lazy_motion_ratio": ratio},
            "highlights": highlights, "files": {"gif": gif},
            "sizes": f"m = {m}, n = {fig.tables['data']['n_train']}, "
                     f"{runs['rich']['n_steps']} gradient steps per run"}


def plot(numbers: dict, params: dict):
    """Two panels, rich and lazy: particle paths in the plane of ``|a_j| w_j / sqrt(d)``, teacher directions."""
    from ._style import figure, finish
    from .animate import plane_points

    fig, axes = figure(2, width=5.0, height=5.0)
    d = numbers["d"]
    tpts = plane_points(np.asarray(numbers["teacher"], float)[None], d)[0]
    for ax, label in zip(axes, ("rich", "lazy")):
        r = numbers["runs"][label]
        xy = plane_points(np.asarray(r["theta"], float), d)
        sign = np.asarray(r["theta"])[0, :, 0] >= 0
        for j in range(xy.shape[1]):
            col = "#c0392b" if sign[j] else "#2471a3"
            ax.plot(xy[:, j, 0], xy[:, j, 1], "-", color=col, lw=0.8, alpha=0.7)
            ax.plot(*xy[0, j], "o", mfc="none", mec=col, ms=4)
            ax.plot(*xy[-1, j], "o", color=col, ms=4)
        lim = 1.1 * max(np.abs(xy).max(), np.abs(tpts).max())
        for q in tpts:
            u = q / np.linalg.norm(q)
            ax.plot([0, 2 * lim * u[0]], [0, 2 * lim * u[1]], "k:", lw=0.8)
        ax.plot(tpts[:, 0], tpts[:, 1], "kx", ms=9, mew=2, label="teacher neurons |a*| w*/sqrt(d) and directions")
        ax.plot([], [], "-o", color="#c0392b", ms=4, label="path of a particle with a_j > 0 (dot: end)")
        ax.plot([], [], "-o", color="#2471a3", ms=4, label="path of a particle with a_j < 0")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
               xlabel=r"$|a_j|\,w_{j,1}/\sqrt{d}$ (weight units)", ylabel=r"$|a_j|\,w_{j,2}/\sqrt{d}$",
               title=f"{label}: tau = {r['tau']:g}, step {r['dt']:g}, {r['n_steps']} steps\n"
                     f"relative displacement {r['displacement']:.3g}, W2 to init {r['w2']:.3g}, "
                     f"train risk {r['train_loss'][-1]:.2g}", )
        ax.title.set_fontsize(9)
        finish(ax)
    claims = numbers["claims"]
    fig.suptitle(f"Particle paths, d = 2, m = {numbers['m']} (Chizat-Oyallon-Bach Fig. 1 setting): rich mass on the "
                 f"teacher directions {claims['rich_mass_on_teacher']:.0%}, rich/lazy displacement ratio "
                 f"{claims['rich_lazy_motion_ratio']:.3g}", fontsize=10)
    return fig
