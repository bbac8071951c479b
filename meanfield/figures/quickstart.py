r"""The quickstart's run as a figure: rich vs lazy on a teacher, with an animation of the particles.

The README's main job (``examples/configs/quickstart.toml``: m = 512, d = 8, a k = 3 relu teacher, mean-field and
NTK scalings from one initialisation) through :func:`meanfield.run.run_config`; the figure is the one
``meanfield run`` draws (:mod:`meanfield.figures.rich_lazy`), and the animation shows both runs' particles on
shared axes (:mod:`meanfield.figures.animate`: the plane of the first two teacher directions).

Claims: the ratio of :math:`W_2(\mu_T, \mu_0)` of the mean-field run to that of the NTK run (NTK particles move
:math:`O(m^{-1/2})`), and the ratio of the NTK to the mean-field test risk at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TITLE = "The quickstart: rich vs lazy on a teacher"
REFERENCE = "examples/configs/quickstart.toml (the README's main job)"

__all__ = ["compute", "plot"]


def compute(fig) -> dict:
    """Run the quickstart configuration (with ``figure.override`` merged) and read both files back."""
    from ..config import from_dict, read_tables
    from ..run import run_config
    from ..trajectory import load
    from ._figure import compact, merge
    from .animate import animate

    p = fig.params
    source = (Path(fig.source).parent / p["run_config"]).resolve()
    tables = merge(read_tables(source), p.get("override", {}))
    tables.setdefault("output", {})["figure"] = False
    cfg = from_dict(tables, source=str(source))
    out = fig.work / "quickstart"
    res = run_config(cfg, out, progress=False)
    fig.runs_made += len(res.runs)
    runs, files = {}, {}
    for r in res.runs:
        files[r.scaling] = r.path
        with load(r.path) as tr:
            runs[r.scaling] = {"times": tr.times, "observables": {k: compact(s.value) for k, s in tr.observables.items()
                                                                  if np.asarray(s.value).ndim == 1},
                               "theta0": compact(tr.particles[0]), "theta_end": compact(tr.particles[-1]),
                               "d": int(tr.model["d"]), "m": int(tr.model["m"])}
            teacher = np.asarray(tr.data["teacher"], float)
    gif = fig.out / f"{fig.name}.gif"
    animate([files["mean_field"], files["ntk"]], gif, frames=p["animation_frames"], fps=10, dpi=64,
            titles=["mean-field scaling (rich)", "NTK scaling (lazy)"])
    mf, ntk = runs["mean_field"]["observables"], runs["ntk"]["observables"]
    claims = {"w2_ratio": float(mf["w2_to_init"][-1] / ntk["w2_to_init"][-1]),
              "test_risk_ratio": float(ntk["test_loss"][-1] / mf["test_loss"][-1])}
    highlights = {}
    for name, o in (("mean-field", mf), ("NTK", ntk)):
        for key in ("train_loss", "test_loss", "w2_to_init", "displacement"):
            highlights[f"{name}: final {key.replace('_', ' ')}"] = float(o[key][-1])
    m = runs["mean_field"]["m"]
    return {"runs": runs, "teacher": teacher, "claims": claims, "highlights": highlights, "files": {"gif": gif},
            "sizes": f"m = {m}, d = {runs['mean_field']['d']}, n = {cfg.data['n_train']}, t = {cfg.run['t_end']:g}"}


def plot(numbers: dict, params: dict):
    """The three panels of :func:`meanfield.figures.rich_lazy.plot`."""
    from .rich_lazy import RunView, draw

    views = {k: RunView(np.asarray(r["times"]), {n: np.asarray(v) for n, v in r["observables"].items()},
                        np.asarray(r["theta0"]), np.asarray(r["theta_end"]), r["d"])
             for k, r in numbers["runs"].items()}
    m = numbers["runs"]["mean_field"]["m"]
    return draw(views, teacher=np.asarray(numbers["teacher"]),
                title=f"Quickstart: mean-field vs NTK from one initialisation, m = {m}")
