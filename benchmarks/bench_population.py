"""Benchmark: pairwise population velocities (relu, closed form, no bias) against plain NumPy with m x m arrays.

Times ``meanfield.population.population_velocities`` for m in {1000, 4000, 16000} at d = 16 and a k = 4
teacher, against :func:`numpy_velocities`, which builds the (m, m) matrices of the same closed form
(BLAS Gram matrix, vectorised arctan2), in the same run. Also measures the machine's scalar arccos rate
(``math.acos`` in a compiled loop, one thread), the kernel's rate in pair evaluations per second
(m(m+1)/2 pairs, each evaluated once for both particles), and the peak memory of m = 10^5 in a
subprocess. Writes JSON and Markdown next to this file (``--out``).

Usage: python benchmarks/bench_population.py [--quick] [--big] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np


def numpy_velocities(theta, teacher, d):
    """The mean_field population velocity for relu without bias, with explicit (m, m) arrays."""
    m = theta.shape[0]
    a, W = theta[:, 0], theta[:, 1:]
    at, Wt = teacher[:, 0], teacher[:, 1 : 1 + d]

    def blocks(W1, W2):
        q1 = np.einsum("ij,ij->i", W1, W1) / d
        q2 = np.einsum("ij,ij->i", W2, W2) / d
        r = W1 @ W2.T / d
        s2 = np.multiply.outer(q1, q2)
        sin_s = np.sqrt(np.maximum(s2 - r * r, 0.0, out=s2), out=s2)  # s * sin(angle), reuses s2
        pa = np.pi - np.arctan2(sin_s, r)
        K = (sin_s + pa * r) / (2 * np.pi)
        K1 = sin_s / (2 * np.pi) / q1[:, None]
        Kr = pa / (2 * np.pi)
        del sin_s, pa, r
        return K, K1, Kr

    K, K1, Kr = blocks(W, W)
    A, Q, Wv = K @ a, K1 @ a, (Kr * a[None, :]) @ W
    del K, K1, Kr
    Kt, K1t, Krt = blocks(W, Wt)
    tA, tQ, tW = Kt @ at, K1t @ at, Krt @ (at[:, None] * Wt)
    s = 1.0 / m
    out = np.empty_like(theta)
    out[:, 0] = -m * (s * A - tA) * s  # coef = eta m^(beta - alpha) / c = 1 for mean_field
    out[:, 0] = -(s * A - tA)
    out[:, 1:] = -(a[:, None] * ((s * Q - tQ)[:, None] * W + s * Wv - tW) / d)
    return out


def _acos_rate():
    from numba import njit

    @njit
    def loop(x):
        s = 0.0
        for i in range(x.shape[0]):
            s += math.acos(x[i])
        return s

    x = np.random.default_rng(0).uniform(-1, 1, 2_000_000)
    loop(x[:10])
    best = min(_timeit(lambda: loop(x)) for _ in range(3))
    return x.shape[0] / best


def _timeit(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _problem(m, d, seed=0):
    import meanfield.population as P  # noqa: F401
    from meanfield.data import random_teacher
    from meanfield.model import Model, init_particles

    model = Model(d=d, m=m, activation="relu")
    theta = init_particles(model, seed)
    teacher = random_teacher(d, 4, seed=seed)
    return model, theta, teacher


def _peak_rss():
    """Peak resident set size of this process in bytes: VmHWM of /proc/self/status.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries ru_maxrss over fork and execve, so a child started
    by a process that once held large arrays (this benchmark's NumPy m x m run) reports the parent's peak.
    VmHWM belongs to the child's own address space.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _peak_memory_run(m, d):
    """Run one velocity evaluation at size m in a subprocess; return (seconds, peak RSS in bytes)."""
    code = (
        "import time, sys; sys.path.insert(0, %r)\n"
        "from bench_population import _peak_rss, _problem\n"
        "import meanfield.population as P\n"
        "model, theta, teacher = _problem(%d, %d)\n"
        "P.population_velocities(theta[:64], teacher, model.__class__(d=%d, m=64, activation='relu'))\n"
        "t0 = time.perf_counter(); P.population_velocities(theta, teacher, model); t = time.perf_counter() - t0\n"
        "print(t, _peak_rss())\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), m, d, d)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="m in {1000, 4000} only")
    ap.add_argument("--big", action="store_true", help="also run m = 10^5 (peak memory, ~minutes)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    args = ap.parse_args(argv)

    import numba

    import meanfield.population as P

    d = 16
    sizes = [1000, 4000] if args.quick else [1000, 4000, 16000]
    acos_rate = _acos_rate()
    rows = []
    for m in sizes:
        model, theta, teacher = _problem(m, d)
        P.population_velocities(theta[:64], teacher, model.__class__(d=d, m=64, activation="relu"))  # compile
        reps = 3 if m <= 4000 else 1
        t_k = min(_timeit(lambda: P.population_velocities(theta, teacher, model)) for _ in range(reps))
        v = P.population_velocities(theta, teacher, model)
        t_np = min(_timeit(lambda: numpy_velocities(theta, teacher, d)) for _ in range(reps))
        err = float(np.abs(v - numpy_velocities(theta, teacher, d)).max() / np.abs(v).max())
        pairs = m * (m + 1) / 2
        rows.append(dict(m=m, d=d, kernel_s=t_k, numpy_s=t_np, ratio=t_np / t_k, rel_diff=err,
                         pairs_per_s=pairs / t_k, acos_per_s_1thread=acos_rate))
        print(f"m={m:6d}  kernel {t_k:8.4f} s  numpy {t_np:8.4f} s  ratio {t_np / t_k:5.2f}  "
              f"pairs/s {pairs / t_k:.3g}  (acos/s one thread {acos_rate:.3g})  max rel diff {err:.1e}", flush=True)
    big = None
    if args.big:
        t, rss = _peak_memory_run(100_000, d)
        big = dict(m=100_000, d=d, kernel_s=t, peak_rss_bytes=rss, pairs_per_s=100_000 * 100_001 / 2 / t)
        print(f"m=100000  kernel {t:.1f} s  peak RSS {rss / 2**30:.2f} GiB", flush=True)
    load = os.getloadavg()
    meta = dict(python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
                threads=numba.get_num_threads(), cpus=os.cpu_count(), loadavg=load, machine=platform.machine())
    res = dict(meta=meta, rows=rows, big=big)
    with open(os.path.join(args.out, "bench_population.json"), "w") as f:
        json.dump(res, f, indent=1)
    lines = ["| m | d | kernel (s) | NumPy m x m (s) | ratio | pairs/s | acos/s (1 thread) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['m']} | {r['d']} | {r['kernel_s']:.4f} | {r['numpy_s']:.4f} | {r['ratio']:.2f} | "
                     f"{r['pairs_per_s']:.3g} | {r['acos_per_s_1thread']:.3g} |")
    lines.append(f"\nload average during the run: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; threads {meta['threads']}")
    if big:
        lines.append(f"\nm = 10^5: {big['kernel_s']:.1f} s, peak RSS {big['peak_rss_bytes'] / 2**30:.2f} GiB")
    with open(os.path.join(args.out, "bench_population.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
