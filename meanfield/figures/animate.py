r"""Particles in motion: an animation of one run, or of two runs side by side, from their recorded snapshots.

``meanfield animate FILE.h5 [FILE2.h5] [-o OUT.gif|OUT.mp4]`` (or :func:`animate`). Each frame shows every
particle as a point of the plane, the time, and the risk at that snapshot; the teacher's neurons (when the data
set has a teacher) are marked with crosses and the path of each particle so far is drawn faintly.

The plane
---------
A particle :math:`\theta_j = (a_j, w_j[, b_j])` is drawn at :math:`|a_j|\,w_j/\sqrt d` (colour: the sign of
:math:`a_j`), the point whose direction is the neuron's and whose length is its output weight times its input
weight — for a relu network the quantity its contribution to :math:`f` depends on (the relu is positively
homogeneous). A teacher neuron :math:`(a^*_k, w^*_k)` is drawn at :math:`|a^*_k| w^*_k/\sqrt d` under the same
map; a mean-field student matches it with a fraction :math:`1/K` of its mass there, at :math:`K|a^*_k|`.

* d = 2: these points themselves (Chizat, Oyallon & Bach 2019, Fig. 1).
* d > 2: their projection on an orthonormal basis :math:`(u_1, u_2)` of the plane spanned by the first two
  teacher directions :math:`w^*_1, w^*_2` (Gram–Schmidt); without a teacher of two non-parallel neurons, the two
  leading principal axes of the points at the last snapshot of the first file. The axis labels say which.
* d = 1: the plane :math:`(w_j, a_j)` itself.

Runs drawn side by side share their axes (the limits hold every frame of both), so a lazy run's trembling and a
rich run's travel are seen at one scale. GIF is written with Pillow (a matplotlib dependency); MP4 needs ffmpeg on
the ``PATH``, and asking for it without ffmpeg is refused with a message naming the GIF alternative.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FileFormatError

__all__ = ["animate", "plane_points", "projection", "risk_series"]


def projection(d: int, teacher=None, points=None) -> tuple:
    """``(basis (2, d), labels)`` of the plane the particles are drawn in (see the module docstring).

    >>> P, labels = projection(3, teacher=np.array([[1.0, 1, 0, 0], [1.0, 1, 1, 0]]))
    >>> np.round(P, 12).tolist(), labels
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], ('along teacher neuron 1', 'teacher neuron 2, orthogonalised'))
    """
    if d == 2:
        return np.eye(2), ("first input coordinate", "second input coordinate")
    if teacher is not None and len(teacher) >= 2:
        w1, w2 = np.asarray(teacher[0][1 : 1 + d], float), np.asarray(teacher[1][1 : 1 + d], float)
        u1 = w1 / np.linalg.norm(w1)
        v = w2 - (w2 @ u1) * u1
        if np.linalg.norm(v) > 1e-8 * np.linalg.norm(w2):
            return np.vstack([u1, v / np.linalg.norm(v)]), ("along teacher neuron 1",
                                                            "teacher neuron 2, orthogonalised")
    pts = np.asarray(points, float)
    pts = pts - pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts, full_matrices=False)
    basis = np.zeros((2, d))
    basis[: min(2, vt.shape[0])] = vt[:2]
    return basis, ("first principal axis", "second principal axis")


def plane_points(theta, d: int) -> np.ndarray:
    r""":math:`|a_j|\,w_j/\sqrt d`, shape (..., m, d), of particles of shape (..., m, p)."""
    theta = np.asarray(theta, float)
    return np.abs(theta[..., :1]) * theta[..., 1 : 1 + d] / math.sqrt(d)


def risk_series(traj) -> tuple:
    """``(name, times, values)`` of the risk a trajectory recorded (train loss, or population risk), or None."""
    for name in ("train_loss", "population_risk", "test_loss"):
        if name in traj.observables:
            s = traj.observables[name]
            return name, np.asarray(s.time, float), np.asarray(s.value, float)
    return None


def _read(path, flow, frames):
    from ..trajectory import load

    with load(path) as traj:
        if not traj.flows:
            raise FileFormatError(path, "has no particles to animate (a PDE run: its density is under /fields)")
        ft = traj.flow(flow)
        d = int(ft.model.get("d", traj.data.get("d", 0)))
        n = len(ft.particles)
        if n == 0:
            raise FileFormatError(path, f"flow {flow!r} has no particle snapshots")
        idx = np.unique(np.linspace(0, n - 1, min(frames, n)).round().astype(int))
        theta = np.stack([ft.particles[int(i)] for i in range(n)])  # every snapshot, for the paths
        return {"theta": theta, "times": np.asarray(ft.times, float), "frames": idx, "d": d,
                "teacher": traj.data.get("teacher"), "risk": risk_series(ft), "name": Path(path).name,
                "scaling": ft.model.get("scaling", ""), "c": ft.model.get("c")}


def _xy(run, basis):
    d = run["d"]
    if d == 1:
        return run["theta"][..., [1, 0]]
    return plane_points(run["theta"], d) @ basis.T


def animate(files, out=None, *, flow: str = "neurons", frames: int = 60, fps: int = 10, dpi: int = 80,
            titles=None) -> Path:
    """Animate the particles of one trajectory file, or two side by side on shared axes.

    Parameters
    ----------
    files : str, os.PathLike or a sequence of one or two of them
        Trajectory files (:func:`meanfield.load`).
    out : str or os.PathLike, optional
        ``.gif`` (Pillow) or ``.mp4`` (ffmpeg). Default: the first file with suffix ``.gif``.
    flow : str
        The flow of each file to draw (``"neurons"``, or ``"linearized"``).
    frames : int
        At most this many frames, at snapshots evenly spread over the recorded ones.
    fps : int
        Frames per second.
    dpi : int
        Resolution of the frames.
    titles : sequence of str, optional
        Panel titles (default: the file names and their scaling).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import animation

    from ..validate import check_int

    files = [files] if isinstance(files, (str, Path)) else list(files)
    if not 1 <= len(files) <= 2:
        raise ConfigError("files", [str(f) for f in files], "one or two trajectory files")
    frames = check_int("--frames", frames, low=2)
    fps = check_int("--fps", fps, low=1)
    out = Path(out) if out is not None else Path(files[0]).with_suffix(".gif")
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise ConfigError("--out", str(out), "a .gif or .mp4 file name")
    if out.suffix.lower() == ".mp4" and shutil.which("ffmpeg") is None:
        raise ConfigError("--out", str(out), "a .gif file: ffmpeg, needed for .mp4, was not found on the PATH "
                                             "(GIF needs nothing beyond the dependencies)")
    if not out.parent.is_dir():
        raise ConfigError("--out", str(out), "a file in an existing folder")
    runs = [_read(f, flow, frames) for f in files]
    d = runs[0]["d"]
    if any(r["d"] != d for r in runs):
        raise ConfigError("files", [str(f) for f in files], "runs of one input dimension d")
    teacher = runs[0]["teacher"]
    basis, labels = projection(d, teacher, plane_points(runs[0]["theta"][-1], d) if d > 1 else None)
    xys = [_xy(r, basis) for r in runs]
    tpts = None
    if teacher is not None and d > 1:
        tpts = plane_points(np.asarray(teacher, float)[None], d)[0] @ basis.T
    allpts = np.concatenate([xy.reshape(-1, 2) for xy in xys] + ([tpts] if tpts is not None else []))
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad

    fig, axes = plt.subplots(1, len(runs), figsize=(4.4 * len(runs), 4.4), squeeze=False, constrained_layout=True)
    axes = axes[0]
    artists = []
    for k, (ax, run, xy) in enumerate(zip(axes, runs, xys)):
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
        if d != 1:  # lengths in the plane are comparable: one unit is one unit on both axes
            ax.set_aspect("equal", adjustable="datalim")
        if d == 1:
            ax.set(xlabel="input weight w_j", ylabel="output weight a_j")
        else:
            ax.set(xlabel=f"|a_j| w_j / sqrt(d): {labels[0]}", ylabel=f"{labels[1]}")
        if tpts is not None:
            ax.plot(tpts[:, 0], tpts[:, 1], "kx", ms=9, mew=2, label="teacher neurons", zorder=5)
            reach = float(np.max(np.abs(np.concatenate([lo, hi])))) * 2
            for p in tpts:  # the teacher's directions, as rays from the origin
                u = p / max(np.linalg.norm(p), 1e-300)
                ax.plot([0, reach * u[0]], [0, reach * u[1]], "k:", lw=0.7)
        sign = np.sign(run["theta"][0, :, 0])
        colors = np.where(sign >= 0, "#c0392b", "#2471a3")
        paths = [ax.plot([], [], "-", color=c, lw=0.5, alpha=0.35)[0] for c in colors]
        dots = ax.scatter(xy[0, :, 0], xy[0, :, 1], s=14, c=colors, zorder=4)
        ax.plot([], [], "o", color="#c0392b", ms=4, label="a_j > 0")
        ax.plot([], [], "o", color="#2471a3", ms=4, label="a_j < 0")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3, lw=0.4)
        title = titles[k] if titles else f"{run['name']} ({run['scaling']}" + \
            (f", c = {run['c']:g})" if run.get("c") not in (None, 1.0) else ")")
        ax.set_title(title, fontsize=9)
        text = ax.text(0.02, 0.02, "", transform=ax.transAxes, fontsize=8, va="bottom",
                       bbox=dict(boxstyle="round", fc="white", alpha=0.8))
        artists.append((run, xy, paths, dots, text))
    n_frames = max(len(r["frames"]) for r in runs)

    def draw(i):
        changed = []
        for run, xy, paths, dots, text in artists:
            s = int(run["frames"][min(i, len(run["frames"]) - 1)])
            for j, line in enumerate(paths):
                line.set_data(xy[: s + 1, j, 0], xy[: s + 1, j, 1])
            dots.set_offsets(xy[s])
            line = f"t = {run['times'][s]:.4g}"
            if run["risk"] is not None:
                name, rt, rv = run["risk"]
                k = int(np.argmin(np.abs(rt - run["times"][s])))
                line += f"\n{name.replace('_', ' ')} = {rv[k]:.3g}"
            text.set_text(line)
            changed += paths + [dots, text]
        return changed

    anim = animation.FuncAnimation(fig, draw, frames=n_frames, blit=False)
    if out.suffix.lower() == ".gif":
        writer = animation.PillowWriter(fps=fps)
    else:
        writer = animation.FFMpegWriter(fps=fps)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    try:
        anim.save(tmp, writer=writer, dpi=dpi)
        tmp.replace(out)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return out
