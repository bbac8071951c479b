"""Command line: ``meanfield run CONFIG``, ``sweep CONFIG``, ``info FILE|DIR``, ``figures [NAME ...]``, ``animate FILE``.

The command line only parses arguments, calls :func:`meanfield.run.run_config` (or
:func:`meanfield.trajectory.info`) and maps the outcome to an exit code:

====  ==========================================================================================
0     done
1     a flow diverged (its file is marked ``diverged``, with the snapshots up to the last good state), or a
      point of a sweep failed or diverged (recorded in the sweep's index), or (``figures --strict``) a figure's
      claim did not reproduce
2     bad input: a configuration key or value, a file (one line on standard error, no traceback, nothing
      written), or a damaged trajectory file (``info``)
130   interrupted by SIGINT or SIGTERM: files are marked ``interrupted`` and ``--resume`` continues them
====  ==========================================================================================

SIGINT and SIGTERM are deferred to the run's safe points from the first line of the program on
(:mod:`meanfield.interrupt`), so a signal is never lost and never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import interrupt
from .errors import ConfigError, MeanfieldError

__all__ = ["main", "entry"]

_INTERRUPTED = "meanfield: interrupted; files are marked 'interrupted' and can be continued with --resume"


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
    w = sub.add_parser("sweep", help="run a sweep of a configuration on Dask (a local cluster, or --scheduler)")
    w.add_argument("config", help="TOML configuration file; its [sweep] table may hold grid, zip and seeds")
    w.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2,...",
                   help="sweep a key over values, e.g. --grid model.m=256,1024 (repeat for a product)")
    w.add_argument("--seeds", type=int, help="number of seeds 0..N-1 (model.seed and dynamics.seed)")
    w.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value of the base configuration")
    w.add_argument("-o", "--out", help="sweep folder (default: output.dir of the configuration)")
    w.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786")
    w.add_argument("--workers", type=int, help="worker processes of the local cluster (default: the cores)")
    w.add_argument("--threads", type=int, help="numba threads per run (default: cores / workers locally, else 1)")
    w.add_argument("--resume", action="store_true",
                   help="accepted for clarity: a sweep always skips completed runs and continues interrupted ones")
    w.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    i = sub.add_parser("info", help="summarise an HDF5 result file and verify its checksums "
                                    "(also while it is being written), or a sweep folder")
    i.add_argument("file")
    si = sub.add_parser("sweep-info", help="summarise a sweep folder")
    si.add_argument("folder")
    f = sub.add_parser("figures", help="regenerate the canonical figures (PNG, PDF, JSON of their numbers) and "
                                       "their Markdown page")
    f.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all; see docs/figures.md)")
    f.add_argument("--quick", action="store_true", help="small sizes (what the tests assert)")
    f.add_argument("-o", "--out", default="figures", help="output folder (default: figures)")
    f.add_argument("--markdown", help="the Markdown page to regenerate (default: OUT/figures.md)")
    f.add_argument("--configs", help="folder of the figure configurations (default: examples/configs/figures)")
    f.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler for the figures that sweep")
    f.add_argument("--workers", type=int, help="workers of the local Dask cluster (default: the cores)")
    f.add_argument("--resume", action="store_true", help="keep the completed runs of an interrupted call")
    f.add_argument("--reuse", action="store_true",
                   help="keep figures whose JSON in OUT was made by the same code, configuration and version")
    f.add_argument("--replot", action="store_true",
                   help="only redraw PNG and PDF from the numbers in the figure JSON files already in OUT")
    f.add_argument("--markdown-only", action="store_true",
                   help="only regenerate the Markdown page from the figure JSON files already in OUT")
    f.add_argument("--strict", action="store_true", help="exit with code 1 when a claim does not reproduce")
    f.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    a = sub.add_parser("animate", help="animate the particles of a run, or of two runs side by side (GIF or MP4)")
    a.add_argument("files", nargs="+", metavar="FILE.h5", help="one or two trajectory files")
    a.add_argument("-o", "--out", help="output .gif (Pillow) or .mp4 (ffmpeg) (default: FILE.gif)")
    a.add_argument("--flow", default="neurons", help="the flow of each file to draw (default: neurons)")
    a.add_argument("--frames", type=int, default=60, help="at most this many frames (default: 60)")
    a.add_argument("--fps", type=int, default=10, help="frames per second (default: 10)")
    a.add_argument("--quiet", action="store_true", help="print nothing")
    return p


def _run(args) -> int:
    from .config import load
    from .run import run_config

    interrupt.check()  # a signal during the imports above stops here, before anything is read or written
    cfg = load(args.config, args.set)
    say = (lambda line: None) if args.quiet else print
    result = run_config(cfg, args.out, resume=args.resume, progress=False if args.quiet else None, log=say)
    if result.figure is not None:
        say(f"figure -> {result.figure}")
    say(result.table())
    return 0 if result.ok else 1


def _sweep(args) -> int:
    from .sweep import define, info, sweep

    interrupt.check()
    sw = define(args.config, grid=_grid(args.grid), seeds=args.seeds, overrides=args.set)
    say = (lambda line: None) if args.quiet else print
    idx = sweep(sw, args.out, scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                progress=False if args.quiet else None, log=say)
    say(info(idx.folder))
    counts = idx.counts()
    return 0 if set(counts) <= {"completed"} else 1


def _grid(items):
    from .sweep import parse_grid

    return parse_grid(items)


def _sweep_info(args) -> int:
    from .sweep import info

    interrupt.check()
    print(info(args.folder))
    return 0


def _info(args) -> int:
    from .trajectory import info, verify

    if os.path.isdir(args.file):
        return _sweep_info(argparse.Namespace(folder=args.file))
    interrupt.check()
    damaged = verify(args.file)
    print(info(args.file, damaged=damaged))
    if damaged:
        print(f"meanfield: error: {args.file} is damaged: {damaged[0]}", file=sys.stderr)
        return 2
    return 0


def _figures(args) -> int:
    from pathlib import Path

    from .figures import make, replot, write_markdown

    interrupt.check()
    if args.replot:
        for record in replot(args.names, args.out, args.markdown):
            if not args.quiet:
                print(f"{record['name']}: redrawn from {Path(args.out) / (record['name'] + '.json')}")
        return 0
    if args.markdown_only:
        out = Path(args.out)
        if not out.is_dir():
            raise ConfigError("--out", args.out, "a folder holding figure JSON files (from meanfield figures)")
        path = write_markdown(out, args.markdown if args.markdown else out / "figures.md")
        print(f"markdown -> {path}")
        return 0
    say = (lambda line: None) if args.quiet else print
    records = make(args.names, quick=args.quick, out=args.out, markdown=args.markdown, configs=args.configs,
                   scheduler=args.scheduler, workers=args.workers, resume=args.resume, reuse=args.reuse,
                   progress=False if args.quiet else None, log=say)
    failed = [f"{r['name']}.{c['name']}" for r in records for c in r["claims"] if not c["holds"]]
    if failed:
        say("claims that do not reproduce: " + ", ".join(failed))
    return 1 if failed and args.strict else 0


def _animate(args) -> int:
    from .figures.animate import animate

    interrupt.check()
    path = animate(args.files, args.out, flow=args.flow, frames=args.frames, fps=args.fps)
    if not args.quiet:
        print(f"animation -> {path}")
    return 0


def main(argv=None) -> int:
    """Run the command line with arguments ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    with interrupt.deferred():
        try:
            code = {"run": _run, "sweep": _sweep, "info": _info, "sweep-info": _sweep_info, "figures": _figures,
                    "animate": _animate}[args.command](args)
            interrupt.check()  # a signal after the last safe point still counts
            return code
        except MeanfieldError as err:
            print(f"meanfield: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(_INTERRUPTED, file=sys.stderr)
            return 130


def entry() -> None:
    """The ``meanfield`` program: :func:`main` with SIGINT and SIGTERM deferred from its first line to its exit.

    Before exiting, both signals are blocked and a signal that arrived after the run's last safe point turns
    the exit code into 130; the process then exits at once, so no signal can arrive unseen during interpreter
    shutdown.
    """
    interrupt.install()
    code = main()
    signal.pthread_sigmask(signal.SIG_BLOCK, interrupt.SIGNALS)
    if code != 130 and (interrupt.pending() or set(signal.sigpending()) & set(interrupt.SIGNALS)):
        print(_INTERRUPTED, file=sys.stderr)
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
