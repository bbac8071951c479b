"""Time one full-batch velocity evaluation on a finite data set: meanfield vs the peers and the GEMM floor.

One evaluation = outputs f(x_i) on n points + all m particle velocities (relu, mean-field scaling, no bias).
The peers compute the same numbers with dense n x m arrays: plain NumPy (BLAS products), PyTorch on the CPU
and JAX (jit), each checked against meanfield's velocities before it is timed (relative difference < 1e-10 in
float64, < 1e-4 in float32); a peer that is not installed is reported missing. The GEMM floor is the time of
the step's two matrix products alone through NumPy's BLAS: Z = X W^T (n x d by d x m) and G^T X (m x n by
n x d). Every (shape, dtype, implementation) runs in its own process, which reports its best time and its
peak memory: the growth of the resident set (VmHWM, reset before the timed calls) over what the process held
before them, i.e. the working memory of the evaluation beyond its inputs.

    python benchmarks/bench_finite.py            # every row, float64 and float32: benchmarks/out/finite.{json,md}
    python benchmarks/bench_finite.py --quick    # the two smallest shapes, float64
    python benchmarks/bench_finite.py --huge     # adds (10^4, 2, 10^6), meanfield only (the peers need 80 GB)
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from _timing import best_of, blas_info, machine, write

SIZES = [(256, 8, 512), (1000, 16, 1000), (1200, 64, 1024), (1024, 16, 4096), (4096, 32, 4096),
         (4096, 32, 16384), (256, 8, 100_000)]
HUGE = (10_000, 2, 1_000_000)
IMPLS = ["meanfield", "gemm_floor", "numpy", "torch", "jax"]
TOL = {"float64": 1e-10, "float32": 1e-4}


def _problem(n, d, m, dtype):
    import meanfield as mf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    model = mf.Model(d=d, m=m, dtype=dtype)
    return model, mf.init_particles(model, 0), X, y


def numpy_velocity(theta, X, y, m):
    d, n = X.shape[1], X.shape[0]
    a, W = theta[:, 0], theta[:, 1:]
    Z = X @ W.T / np.sqrt(d)  # (n, m)
    S = np.maximum(Z, 0.0)
    r = S @ a / m - y
    G = (Z > 0) * a  # a sigma'(z)
    va = -(r @ S) / n
    vw = -((G * r[:, None]).T @ X) / (n * np.sqrt(d))
    return np.column_stack([va, vw])


def torch_velocity_fn(theta, X, y, m):
    import torch

    th, Xt, yt = (torch.from_numpy(v) for v in (theta, X, y))
    d, n = X.shape[1], X.shape[0]

    def fn():
        with torch.no_grad():
            a, W = th[:, 0], th[:, 1:]
            Z = Xt @ W.T / d**0.5
            S = torch.relu(Z)
            r = S @ a / m - yt
            G = (Z > 0).to(Z.dtype) * a
            return torch.column_stack([-(r @ S) / n, -((G * r[:, None]).T @ Xt) / (n * d**0.5)]).numpy()

    return fn


def jax_velocity_fn(theta, X, y, m):
    import jax

    jax.config.update("jax_enable_x64", theta.dtype == np.float64)
    import jax.numpy as jnp

    d, n = X.shape[1], X.shape[0]

    @jax.jit
    def vel(th, Xj, yj):
        a, W = th[:, 0], th[:, 1:]
        Z = Xj @ W.T / jnp.sqrt(d).astype(th.dtype)
        S = jnp.maximum(Z, 0.0)
        r = S @ a / m - yj
        G = (Z > 0) * a
        return jnp.column_stack([-(r @ S) / n, -((G * r[:, None]).T @ Xj) / (n * jnp.sqrt(d).astype(th.dtype))])

    thj, Xj, yj = jnp.asarray(theta), jnp.asarray(X), jnp.asarray(y)
    return lambda: np.asarray(vel(thj, Xj, yj).block_until_ready())


def gemm_floor_fn(theta, X, y, m):
    """The two products of the step alone, through NumPy's BLAS (operands prepared outside the timing)."""
    W = np.ascontiguousarray(theta[:, 1:])
    G = np.random.default_rng(1).standard_normal((X.shape[0], m)).astype(X.dtype)

    def fn():
        X @ W.T
        G.T @ X

    return fn


def _status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")


def run_one(n, d, m, dtype, impl, check):
    """Time one implementation in this process; print a JSON line {ms, peak_MiB} or {missing}."""
    import meanfield as mf

    model, theta, X, y = _problem(n, d, m, dtype)
    if impl == "meanfield":
        fn = lambda: mf.velocities(theta, X, y, model)  # noqa: E731
    else:
        ours = mf.velocities(theta, X, y, model) if check else None
        make = {"gemm_floor": gemm_floor_fn, "numpy": lambda *a: (lambda: numpy_velocity(*a)),
                "torch": torch_velocity_fn, "jax": jax_velocity_fn}[impl]
        try:
            fn = make(theta, X, y, m)
        except ImportError as e:
            print(json.dumps({"missing": f"not installed ({e.name})"}))
            return
        if check and impl != "gemm_floor":
            err = float(np.max(np.abs(np.asarray(fn(), dtype=np.float64) - ours)) / np.max(np.abs(ours)))
            assert err < TOL[dtype], (impl, err)
    fn()  # compile / warm up
    open("/proc/self/clear_refs", "w").write("5")  # reset the resident-set high-water mark
    before = _status("VmRSS")
    t = best_of(fn, repeat=5 if n * m < 10**9 else 1, min_time=0.2 if n * m < 10**9 else 0.0)
    print(json.dumps({"ms": 1e3 * t, "peak_MiB": _status("VmHWM") - before, "process_peak_MiB": _status("VmHWM")}))


def blas_trap(n, d, m):
    """The blocked kernels called directly (without meanfield.threads), BLAS at 1 thread and at 2 threads."""
    import meanfield as mf
    from meanfield.flow import make_field
    from meanfield.model import kernels_for
    from threadpoolctl import threadpool_limits

    model, theta, X, y = _problem(n, d, m, "float64")
    field = make_field(X, y, model, mf.Dynamics())
    idx, r, out = np.arange(n), np.empty(n), np.empty_like(theta)
    kernel = kernels_for(model).velocity
    times = {}
    for blas_threads in (1, 2):
        with threadpool_limits(blas_threads, user_api="blas"):
            times[f"blas_{blas_threads}_thread_ms"] = 1e3 * best_of(lambda: kernel(field, theta, idx, n, r, out))
    return {"shape": [n, d, m], **times}


def _child(n, d, m, dtype, impl, check=True):
    cmd = [sys.executable, __file__, "--one", str(n), str(d), str(m), dtype, impl] + ([] if check else ["--no-check"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        return {"missing": "failed: " + proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--one", nargs=5)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    if args.one:
        n, d, m, dtype, impl = args.one
        run_one(int(n), int(d), int(m), dtype, impl, not args.no_check)
        return
    shapes = SIZES[:2] if args.quick else SIZES
    dtypes = ["float64"] if args.quick else ["float64", "float32"]
    rows, t0 = [], time.time()
    for dtype in dtypes:
        for n, d, m in shapes:
            row = {"dtype": dtype, "n": n, "d": d, "m": m}
            res = {impl: _child(n, d, m, dtype, impl) for impl in IMPLS}
            ours = res["meanfield"]["ms"]
            for impl, r in res.items():
                row[f"{impl}_ms"] = r.get("ms", r.get("missing"))
                row[f"{impl}_MiB"] = r.get("peak_MiB", float("nan"))
            peers = {k: r["ms"] for k, r in res.items() if k not in ("meanfield", "gemm_floor") and "ms" in r}
            fastest = min(peers, key=peers.get) if peers else None
            row["fastest_peer"] = fastest
            row["fastest_peer/meanfield"] = peers[fastest] / ours if fastest else float("nan")
            row["meanfield/gemm_floor"] = ours / res["gemm_floor"]["ms"] if "ms" in res["gemm_floor"] else float("nan")
            rows.append(row)
            print(row, flush=True)
    if args.huge:
        n, d, m = HUGE
        r = _child(n, d, m, "float64", "meanfield", check=False)
        gb = n * m * 8 / 1e9
        row = dict.fromkeys(rows[0] if rows else [], "")
        row.update({"dtype": "float64", "n": n, "d": d, "m": m, "meanfield_ms": r.get("ms", r.get("missing")),
                    "meanfield_MiB": r.get("peak_MiB", float("nan")),
                    "meanfield/gemm_floor": f"whole process peak {r.get('process_peak_MiB', float('nan')):.0f} MiB"})
        for impl in IMPLS[1:]:
            row[f"{impl}_ms"] = f"not run: an n x m array is {gb:.0f} GB"
        rows.append(row)
        print(row, flush=True)
    meta = machine()
    meta.update(blas_info(), blas_inside_parallel_loops=[blas_trap(*shape) for shape in SIZES[:3]],
                wall_s=time.time() - t0, command=" ".join(["python benchmarks/bench_finite.py"] + sys.argv[1:]))
    write("finite", rows, meta)


if __name__ == "__main__":
    main()
