"""Where does exact W2 fit a time and memory budget? POT's network simplex and scipy's assignment solver.

Run: ``python benchmarks/bench_w2_budget.py [--m 1000,2000,...] [--p 3,9,17]``; writes
benchmarks/out/w2_budget.{json,md}. Each case runs in a fresh subprocess (peak RSS from /proc/self/status
VmHWM, minus the RSS before the call): two independent standard Gaussian clouds of m points in R^p (the
hardest case for both solvers), ``ot.emd2(a, b, ot.dist(x, y), numItermax=10**9)`` (converged: result code
1 checked) and ``scipy.optimize.linear_sum_assignment`` on the same cost (what ``meanfield.transport.exact``
uses for equal uniform sizes). The two values are compared (relative difference printed).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _timing import machine, write

CHILD = r"""
import json, os, sys, time, warnings
os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1"); os.environ.setdefault("POT_BACKEND_DISABLE_JAX", "1")
import numpy as np, ot
from scipy.optimize import linear_sum_assignment
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024.0
m, p, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(m + p)
x, y = rng.standard_normal((m, p)), rng.standard_normal((m, p))
a = np.full(m, 1.0 / m)
base = rss("VmRSS")
t0 = time.perf_counter()
if which == "emd":
    M = ot.dist(x, y)
    val, log = ot.emd2(a, a, M, numItermax=10**9, log=True)
    ok = int(log["result_code"]) == 1
else:
    M = ot.dist(x, y)
    r, c = linear_sum_assignment(M)
    val, ok = float(M[r, c].mean()), True
el = time.perf_counter() - t0
print(json.dumps({"seconds": el, "peak_mb": rss("VmHWM") - base, "w2": float(np.sqrt(val)), "ok": ok}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", default="1000,2000,3000,4000,5000,6000")
    ap.add_argument("--p", default="3,9,17")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    rows = []
    for p in [int(v) for v in args.p.split(",")]:
        for m in [int(v) for v in args.m.split(",")]:
            row = {"p": p, "m": m}
            for which in ("emd", "assignment"):
                try:
                    out = subprocess.run([sys.executable, "-c", CHILD, str(m), str(p), which], capture_output=True,
                                         text=True, timeout=args.timeout, check=True)
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    res = {"seconds": float("inf"), "peak_mb": float("nan"), "w2": float("nan"), "ok": False}
                row[f"{which} (s)"] = round(res["seconds"], 3)
                row[f"{which} peak (MB)"] = round(res["peak_mb"], 1)
                row[f"{which} W2"] = res["w2"]
            row["rel. diff"] = abs(row["emd W2"] - row["assignment W2"]) / row["emd W2"]
            print(row, "load", os.getloadavg()[0], flush=True)
            rows.append(row)
    write("w2_budget", rows, {**machine(), "when": time.strftime("%Y-%m-%d %H:%M")})


if __name__ == "__main__":
    main()
