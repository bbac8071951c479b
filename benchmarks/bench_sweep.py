"""Benchmark: sweeps on the local Dask cluster. Overhead per run, and the speed-up of two workers over one.

1. Overhead per run beyond the run itself: two sweeps of tiny runs (2 steps, m = 8) on one worker, of N1 and N2
   points; the overhead per run is ((T2 - T1) - (S2 - S1)) / (N2 - N1), where T is the sweep's wall time and
   S the sum of the runs' own wall times from the index (``seconds``, measured inside ``run_config``), so the
   cluster's start-up and the fixed costs cancel.
2. Speed-up: 32 small runs (m = 64, 400 RK4 steps, d = 8, n = 256) on 1 worker of 1 numba thread, on 1 worker
   of 2 threads, and on 2 workers of 1 thread each (the default on 2 cores), in the same run (each sweep starts
   its own cluster; its start-up is included).

Usage: python benchmarks/bench_sweep.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

BASE = """
[data]
kind = "teacher_student"
d = {d}
n_train = {n}
k = 2
seed = 1
[model]
m = {m}
[dynamics]
dt = 0.05
integrator = "{integrator}"
[run]
n_steps = {steps}
snapshot_every = {every}
[observers]
record = ["risks", "motion"]
[output]
figure = false
[sweep]
grid = {{"model.seed" = {seeds}}}
"""


def timed_sweep(folder, text, workers, threads):
    from meanfield.sweep import sweep

    cfg = Path(folder) / "bench.toml"
    cfg.write_text(text)
    t0 = time.perf_counter()
    idx = sweep(cfg, Path(folder) / f"out-{workers}-{threads}", workers=workers, threads=threads, progress=False)
    wall = time.perf_counter() - t0
    assert idx.counts() == {"completed": len(set(idx.columns["run"]))}, idx.counts()
    return wall, float(sum(idx.columns["seconds"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count()))
    n1, n2 = (4, 12) if args.quick else (8, 40)
    tiny = dict(d=3, n=16, m=8, integrator="euler", steps=2, every=1)
    small = dict(d=8, n=256, m=64, integrator="rk4", steps=100 if args.quick else 400, every=50)
    n_small = 8 if args.quick else 32
    with tempfile.TemporaryDirectory() as tmp:
        for sub in "wabcde":
            os.makedirs(f"{tmp}/{sub}")
        timed_sweep(f"{tmp}/w", BASE.format(**tiny, seeds=list(range(2))), 1, 1)  # compile / warm the kernel cache
        t1, s1 = timed_sweep(f"{tmp}/a", BASE.format(**tiny, seeds=list(range(n1))), 1, 1)
        t2, s2 = timed_sweep(f"{tmp}/b", BASE.format(**tiny, seeds=list(range(100, 100 + n2))), 1, 1)
        overhead = ((t2 - t1) - (s2 - s1)) / (n2 - n1)
        one, _ = timed_sweep(f"{tmp}/c", BASE.format(**small, seeds=list(range(n_small))), 1, 1)
        one2, _ = timed_sweep(f"{tmp}/e", BASE.format(**small, seeds=list(range(n_small))), 1, 2)
        two, _ = timed_sweep(f"{tmp}/d", BASE.format(**small, seeds=list(range(n_small))), 2, 1)
    result = {
        "machine": platform.platform(), "cores": os.cpu_count(), "python": platform.python_version(),
        "overhead_per_run_s": overhead, "tiny_sweeps": {"points": [n1, n2], "wall_s": [t1, t2], "runs_s": [s1, s2]},
        "small_runs": n_small, "one_worker_one_thread_s": one, "one_worker_two_threads_s": one2,
        "two_workers_one_thread_s": two,
        "speedup": one / two, "command": " ".join([Path(sys.executable).name] + sys.argv),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (f"| quantity | value |\n|---|---|\n| overhead per run beyond the run itself | {overhead:.3f} s |\n"
          f"| {n_small} small runs, 1 worker x 1 thread | {one:.1f} s |\n"
          f"| {n_small} small runs, 1 worker x 2 threads | {one2:.1f} s |\n"
          f"| {n_small} small runs, 2 workers x 1 thread | {two:.1f} s |\n| speed-up of 2 workers over 1 worker x 1 thread | {one / two:.2f} |\n")
    (out / "bench_sweep.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
