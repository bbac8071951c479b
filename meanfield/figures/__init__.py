r"""The canonical mean-field vs NTK figures, each regenerated from its configuration with its numbers.

``meanfield figures [NAME ...] [--quick] [-o DIR]`` (or :func:`make`) runs each figure of :data:`FIGURES` from
``examples/configs/figures/<name>.toml`` through the run pipeline (and Dask sweeps where a figure needs many
runs), and writes ``<name>.png``, ``<name>.pdf`` and ``<name>.json`` (every number the figure shows, its claims
against the literature, the configuration, the library version, the wall time) into DIR, then regenerates the
Markdown page of every figure found there (docs/figures.md for the repository's own figures).
:mod:`meanfield.figures._figure` describes what a figure module provides.

matplotlib is imported here and below only; ``import meanfield`` does not import it.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from pathlib import Path

from ..errors import ConfigError, FileFormatError

__all__ = ["FIGURES", "make", "replot", "write_markdown", "figure_module", "show"]

#: The figures in the order of docs/figures.md: module name -> short title.
FIGURES = {
    "particle_paths": "Particle paths in the plane, rich vs lazy",
    "scale_sweep": "Test loss against the scale",
    "width_displacement": "How far trajectories move against the width",
    "linearization": "The network against its linearisation under NTK scaling",
    "ntk_evolution": "The tangent kernel at initialisation and after training",
    "ntk_error": "Finite-width error of the empirical NTK",
    "chaos": "The mean-field limit: propagation of chaos",
    "chaos_pde": "The mean-field limit against the grid PDE",
    "phase_diagram": "The scaling phase diagram",
    "langevin": "Mean-field Langevin dynamics",
    "quickstart": "The quickstart: rich vs lazy on a teacher",
}


def figure_module(name: str):
    """The module of figure ``name`` (ConfigError for a name not in :data:`FIGURES`)."""
    if name not in FIGURES:
        raise ConfigError("figure", name, "one of " + ", ".join(FIGURES))
    return importlib.import_module(f"{__name__}.{name}")


def _command(name, quick, out, markdown) -> str:
    parts = ["meanfield figures", name] + (["--quick"] if quick else []) + ["-o", str(out)]
    if markdown is not None:
        parts += ["--markdown", str(markdown)]
    return " ".join(parts)


def _code_hash(module) -> str:
    """sha256 of the figure module's source and of the shared machinery (a changed figure is never reused)."""
    import hashlib

    from . import _figure

    h = hashlib.sha256()
    for mod in (module, _figure):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def _reusable(path: Path, record: dict) -> dict | None:
    """The record of ``path`` if it was made by the same code, configuration, version and mode, with its files."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = ("quick", "version", "code", "params", "config")
    if any(old.get(k) != record[k] for k in keys):
        return None
    if not all((path.parent / f).is_file() for f in old.get("files", {}).values()):
        return None
    return old


def make(names=None, *, quick: bool = False, out="figures", markdown=None, configs=None, scheduler=None,
         workers=None, resume: bool = False, reuse: bool = False, progress=None, log=None) -> list:
    """Make figures: run their simulations, write PNG, PDF and JSON, regenerate the Markdown page.

    Parameters
    ----------
    names : sequence of str, optional
        Figures of :data:`FIGURES` (default: all, in order).
    quick : bool
        The small sizes of each configuration's ``[quick]`` table (what the tests assert).
    out : str or os.PathLike
        Folder of the figures; their runs go to ``out/runs/<name>``.
    markdown : str or os.PathLike, optional
        The Markdown page regenerated from every figure JSON in ``out`` (default ``out/figures.md``).
    configs : str or os.PathLike, optional
        Folder of the figure configurations (default ``examples/configs/figures``).
    scheduler : str, optional
        A running Dask scheduler for the figures that sweep (default: a local cluster per sweep).
    workers : int, optional
        Workers of the local cluster (default: the cores).
    resume : bool
        Keep the completed runs of an earlier, interrupted call (default: every run is made afresh).
    reuse : bool
        Keep a figure whose JSON in ``out`` was made by the same code (the figure module's source), configuration,
        library version and mode, instead of making it again (default: every figure is made afresh).
    progress : bool, optional
        A progress bar over figures (default: on a terminal).
    log : callable, optional
        Receives one line per finished figure.

    Returns
    -------
    list of dict
        The record written to each ``<name>.json``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from tqdm.auto import tqdm

    from .. import __version__, interrupt
    from ._figure import FigureRun, check_claims, jsonable, load_figure_config, machine, now, write_json

    names = list(FIGURES) if not names else list(names)
    modules = [figure_module(n) for n in names]
    loaded = [load_figure_config(n, quick, configs) for n in names]  # every configuration read before any run
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("--out", str(out), f"a folder that can be created ({exc.strerror})") from None
    md = Path(markdown) if markdown is not None else out / "figures.md"
    say = log or (lambda line: None)
    records = []
    show = sys.stderr.isatty() if progress is None else progress
    for name, module, (tables, params, source) in tqdm(list(zip(names, modules, loaded)), disable=not show,
                                                       unit="figure", desc="figures"):
        if reuse:
            old = _reusable(out / f"{name}.json", {"quick": bool(quick), "version": __version__,
                                                    "code": _code_hash(module), "params": jsonable(params),
                                                    "config": jsonable(tables)})
            if old is not None:
                records.append(old)
                say(f"{name}: {out / (name + '.png')} is up to date (made {old['date']})")
                continue
        start = time.perf_counter()
        fig_run = FigureRun(name, tables, params, quick, out / "runs" / name, source, scheduler=scheduler,
                            workers=workers, resume=resume, log=say)
        numbers = module.compute(fig_run)
        interrupt.check()
        claims = check_claims(params, numbers.get("claims", {}), quick)
        files = _draw(module, numbers, params, name, quick, __version__, out)
        files.update({k: Path(v).name for k, v in numbers.pop("files", {}).items()})
        seconds = time.perf_counter() - start
        record = {"name": name, "title": getattr(module, "TITLE", FIGURES[name]),
                  "reference": getattr(module, "REFERENCE", ""), "quick": bool(quick),
                  "command": _command(name, quick, out, markdown), "wall_seconds": round(seconds, 1),
                  "runs": fig_run.runs_made, "version": __version__, "code": _code_hash(module), "date": now(), "machine": machine(),
                  "files": files, "claims": [c._asdict() for c in claims], "highlights": numbers.get("highlights", {}),
                  "sizes": numbers.get("sizes", ""), "params": params, "config": tables, "numbers": numbers}
        write_json(out / f"{name}.json", record)
        records.append(record)
        verdict = ", ".join(f"{c.name} {c.measured:.3g} ({'holds' if c.holds else 'does NOT reproduce'}: "
                            f"expected {c.expected})" for c in claims)
        say(f"{name}: {out / (name + '.png')} in {seconds:.0f} s; {verdict or 'no claims'}")
    write_markdown(out, md)
    return records


def _draw(module, numbers, params, name, quick, version, out) -> dict:
    """Draw figure ``name`` from its numbers, save ``<name>.png`` and ``<name>.pdf`` in ``out``; their file names."""
    import matplotlib.pyplot as plt

    fig = module.plot(numbers, params)
    size = " (quick mode: small sizes)" if quick else ""
    fig.text(0.003, 0.003, f"meanfield {version} · {name}{size}", ha="left", va="bottom", fontsize=6, color="0.4")
    files = {}
    for ext in ("png", "pdf"):
        path = Path(out) / f"{name}.{ext}"
        fig.savefig(path, dpi=110)
        files[ext] = path.name
    plt.close(fig)
    return files


def replot(names=None, out="figures", markdown=None) -> list:
    """Redraw the PNG and PDF of figures from the numbers saved in their ``<name>.json`` in ``out``, without
    computing anything (after a change to a figure's drawing only), and regenerate the Markdown page.

    The JSON (numbers, claims, wall time, the configuration) is left as it is: every number on the redrawn
    figure is the one saved. Returns the records; a figure without a readable JSON in ``out`` is a FileFormatError."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    out = Path(out)
    names = list(FIGURES) if not names else list(names)
    records = []
    for name in names:
        module = figure_module(name)
        path = out / f"{name}.json"
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problem = "no such file" if isinstance(exc, FileNotFoundError) else "not readable JSON"
            raise FileFormatError(path, f"{problem}; --replot draws from the JSON that 'meanfield figures "
                                        f"{name} -o {out}' writes") from None
        _draw(module, record["numbers"], record["params"], name, record["quick"], record["version"], out)
        records.append(record)
    write_markdown(out, Path(markdown) if markdown is not None else out / "figures.md")
    return records


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "nan" if not math.isfinite(x) else f"{x:.4g}"
    return str(x)


def write_markdown(out, path) -> Path:
    """Regenerate the Markdown page of every figure whose JSON is in ``out``, in the order of :data:`FIGURES`."""
    out, path = Path(out), Path(path)
    rel = os.path.relpath(out, path.parent)
    lines = ["# Figures", "",
             "Generated by `meanfield figures` from the JSON beside each figure; do not edit by hand. Each figure is "
             "regenerated from its configuration in `examples/configs/figures/` by the command shown under it, which "
             "also writes a PDF and a JSON of every number. A claim that does not reproduce is reported as such, "
             "beside the literature's value.", ""]
    for i, name in enumerate(FIGURES, 1):
        jpath = out / f"{name}.json"
        if not jpath.is_file():
            continue
        r = json.loads(jpath.read_text())
        lines += [f"## {i}. {r['title']}", ""]
        if r.get("reference"):
            lines += [f"*Setting of:* {r['reference']}", ""]
        lines += [f"![{r['title']}]({rel}/{r['files']['png']})", ""]
        for key, label in (("gif", "Animation"), ("gif_lazy", "Animation, lazy")):
            if key in r["files"]:
                lines += [f"{label}: ![animation]({rel}/{r['files'][key]})", ""]
        mode = "quick mode (small sizes)" if r["quick"] else "full size"
        lines += [f"`{r['command']}` — {mode}, {r['wall_seconds']:.0f} s wall time on {r['machine']['cores']} cores, "
                  f"{r['runs']} runs, meanfield {r['version']}, {r['date']}. "
                  f"PDF: [{r['files']['pdf']}]({rel}/{r['files']['pdf']}), "
                  f"numbers: [{name}.json]({rel}/{name}.json).", ""]
        if r.get("sizes"):
            lines += [f"Sizes: {r['sizes']}", ""]
        if r["claims"]:
            lines += ["| claim | measured | expected | literature | reproduces |", "|---|---|---|---|---|"]
            for c in r["claims"]:
                lines.append(f"| {c['name']} | {_fmt(c['measured'])} | {c['expected']} | {c['literature']} | "
                             f"{'yes' if c['holds'] else '**no**'} |")
            lines.append("")
            why = [f"- {c['name']}: {c['why']}" for c in r["claims"] if c.get("why")]
            if why:
                lines += ["Tolerances:", ""] + why + [""]
        if r.get("highlights"):
            lines += ["| number | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in r["highlights"].items()]
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, path)
    return path


def show(png):
    """A matplotlib figure that shows the image file ``png`` pixel for pixel (at the dpi it was saved with).

    :func:`make` saves and closes its figures, and does not draw a figure it reuses; ``show`` puts the saved
    figure back on screen, in a notebook or in the documentation's gallery, whose scraper takes the figures left
    open by an example.

    Parameters
    ----------
    png : str or os.PathLike
        An image file, e.g. ``Path(out) / "particle_paths.png"`` after ``make(["particle_paths"], out=out)``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    with Image.open(png) as im:
        dpi = float(im.info.get("dpi", (100.0, 100.0))[0]) or 100.0
    image = plt.imread(png)
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, interpolation="none")
    ax.set_axis_off()
    return fig
