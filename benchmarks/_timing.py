"""Small timing helpers shared by the benchmark scripts."""

import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeat=5, min_time=0.2):
    """Best wall time of one call of fn() over `repeat` rounds (each round loops until min_time)."""
    fn()  # warm-up (compilation)
    best = float("inf")
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        best = min(best, el / n)
    return best


def machine():
    import numba

    return {"cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "load_avg_1min": os.getloadavg()[0]}


def blas_info():
    """The BLAS and OpenMP libraries loaded (threadpoolctl) and the versions of the peers, for the record."""
    from importlib import metadata

    import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS)
    from threadpoolctl import threadpool_info

    libs = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
            for lib in threadpool_info()]
    versions = {}
    for pkg in ("scipy", "threadpoolctl", "torch", "jax", "jaxlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"threadpool": libs, "versions": versions}


def write(name, rows, meta):
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"machine: {meta}")
