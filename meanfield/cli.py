"""Command line: ``meanfield run CONFIG``, ``meanfield info FILE``.

Every error in what the user gave (a configuration key, a value, a file) is printed as one line naming it and
what is allowed, with exit code 2 and no traceback. A diverged run exits with code 1 after marking its file
``diverged``; Ctrl-C or SIGTERM mark it ``interrupted`` (exit code 130).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, DivergenceError, FileFormatError, MeanfieldError

__all__ = ["main"]


def _parser():
    p = argparse.ArgumentParser(prog="meanfield", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the flows of a TOML configuration; write HDF5 files, a figure, a summary")
    r.add_argument("config", help="TOML configuration file (see docs/config.md)")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a configuration value (TOML syntax), e.g. --set model.m=2000")
    r.add_argument("--out", help="output folder (default: output.dir of the configuration)")
    r.add_argument("--resume", action="store_true",
                   help="continue unfinished runs from the last snapshot of their files; skip completed ones")
    r.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    i = sub.add_parser("info", help="summarise an HDF5 result file (also while it is being written)")
    i.add_argument("file")
    return p


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args) -> int:
    from . import config as _config
    from .figures import rich_lazy
    from .flow import particle_flow
    from .h5md import Recorder, last_state
    from .model import init_particles
    from .observers import default_observers
    from .run import simulate
    from .trajectory import load

    cfg = _config.load(args.config, args.set)
    out = Path(args.out or cfg.output["dir"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("output.dir", str(out), f"a folder that can be created ({exc.strerror})") from None
    data = cfg.build_data()
    d = data.X.shape[1]
    dyn = cfg.build_dynamics()
    progress = (not args.quiet) and sys.stderr.isatty()
    stem = Path(cfg.source).stem
    paths = {}
    theta0 = None
    for scaling in cfg.run["scalings"]:
        model = cfg.build_model(d, scaling)
        if theta0 is None:
            theta0 = init_particles(model, cfg.model_seed())  # one initialisation shared by every scaling
        flow = particle_flow(data, model, dyn)
        path = out / f"{stem}_{scaling}.h5"
        paths[scaling] = path
        total = (int(cfg.run["n_steps"]) if "n_steps" in cfg.run
                 else int(round(float(cfg.run["t_end"]) / dyn.dt)))
        start, resume = theta0, False
        if args.resume and path.exists():
            state = last_state(path)
            if state.step >= total:
                continue
            start, resume = state, True
        observers = default_observers(flow, theta0)
        described = {name: obs.describe for name, obs in observers.items() if hasattr(obs, "describe")}
        rec = Recorder(path, config=cfg.to_dict() | {"observers": described}, data=data, seed=cfg.model_seed(),
                       compression=cfg.output["compression"], particles_dtype=cfg.output["particles_dtype"],
                       particle_subset=cfg.output["particle_subset"], resume=resume)
        t0 = time.perf_counter()
        steps_left = total - (start.step if resume else 0)
        try:
            simulate(flow, start, n_steps=steps_left, snapshot_every=int(cfg.run["snapshot_every"]),
                     observers=observers, recorder=rec, progress=progress, label=scaling)
        except DivergenceError as err:
            print(f"meanfield: {scaling}: {err}; snapshots up to the last good state are in {path}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"{scaling}: {steps_left} steps in {time.perf_counter() - t0:.1f} s -> {path}")
    views = {}
    for s, p in paths.items():
        with load(p) as tr:
            views[s] = _RunView.from_trajectory(tr)
    if cfg.output["figure"]:
        fig_path = out / f"{stem}.png"
        rich_lazy.plot(views, fig_path, teacher=getattr(data, "teacher", None),
                       title=f"{stem}: m = {theta0.shape[0]}, d = {d}, n = {data.X.shape[0]}, "
                             f"{cfg.model.get('activation', 'relu')}, {dyn.integrator} dt = {dyn.dt:g}")
        if not args.quiet:
            print(f"figure -> {fig_path}")
    summary = {s: v.summary() for s, v in views.items()}
    (out / f"{stem}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.quiet:
        names = [n for n in ("train_loss", "test_loss", "displacement", "w2_to_init")
                 if any(n in v for v in summary.values())]
        print(f"{'scaling':<12}{'t':>8}" + "".join(f"{n:>16}" for n in names) + f"{'status':>12}")
        for s, v in summary.items():
            print(f"{s:<12}{v['t']:>8g}" + "".join(f"{v.get(n, float('nan')):>16.4g}" for n in names)
                  + f"{v['status']:>12}")
    return 0


class _RunView:
    """What the figure and the summary need from a finished run, read back from its file."""

    def __init__(self, times, observables, theta0, theta_end, d, status):
        self.times, self.observables = times, observables
        self.theta0, self.theta_end, self.d, self.status = theta0, theta_end, d, status

    @classmethod
    def from_trajectory(cls, tr):
        obs = {name: np.asarray(series.value) for name, series in tr.observables.items()}
        times = np.asarray(tr.observables["train_loss"].time)
        return cls(times, obs, tr.first_state().theta, tr.last_state().theta, int(tr.model["d"]), tr.status)

    def summary(self) -> dict:
        out = {name: float(v[-1]) for name, v in self.observables.items() if v.ndim == 1}
        return out | {"t": float(self.times[-1]), "status": self.status}


def _info(args) -> int:
    from .trajectory import info

    print(info(args.file))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return {"run": _run, "info": _info}[args.command](args)
    except (ConfigError, FileFormatError, MeanfieldError) as err:
        print(f"meanfield: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meanfield: interrupted; files are marked 'interrupted' and can be continued with --resume",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
