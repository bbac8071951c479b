"""Benchmark: the grid solver of the mean-field PDE (meanfield.pde).

Plane setting: erf, Gaussian population of a two-neuron teacher (d = 1), 256^2 cells, second order, from the
initial law a, w ~ N(0, 1) to T = 10, serial and parallel kernels (results are bitwise identical). Radial
setting: softplus, d = 3, one teacher ring, 4096 cells, to T = 10 (the table build is timed separately).
Writes JSON and Markdown to benchmarks/out/.

Usage: python benchmarks/bench_pde.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _timing import machine, write


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="T = 1 instead of 10")
    args = ap.parse_args(argv)
    from meanfield import pde
    from meanfield.model import Model

    T_end = 1.0 if args.quick else 10.0
    rows = []
    teacher = np.array([[1.0, 1.5], [-0.5, -0.7]])
    prob = pde.plane_problem(teacher=teacher, activation="erf")
    init = Model(d=1, m=1)
    for n in (128, 256):
        grid = pde.make_grid(prob, n, initial=init)
        for par in (False, True):
            flow = pde.pde_flow(prob, grid, parallel=par)
            flow.advance(flow.init(init), 1)  # compile / load the cache
            s0 = flow.init(init)
            t0 = time.perf_counter()
            s = flow.advance_to(s0, T_end)
            el = time.perf_counter() - t0
            obs = flow.observe(s)
            rows.append({"setting": "plane", "cells": f"{n}^2", "kernels": "parallel" if par else "serial",
                         "T": T_end, "steps": s.step, "seconds": el, "risk": obs["risk"], "outflow": s.outflow})
            print(rows[-1], flush=True)
    rprob = pde.radial_problem(3, [[1.0, 1.5]], activation="softplus")
    rinit = Model(d=3, m=1, sigma_w=0.7)
    rgrid = pde.make_grid(rprob, 4096, initial=rinit)
    t0 = time.perf_counter()
    flow = pde.pde_flow(rprob, rgrid, pde.PDEParams(lr=4.0))
    build = time.perf_counter() - t0
    for par in (False, True):
        flow = pde.pde_flow(rprob, rgrid, pde.PDEParams(lr=4.0), parallel=par)
        flow.advance(flow.init(rinit), 1)
        t0 = time.perf_counter()
        s = flow.advance_to(flow.init(rinit), T_end)
        el = time.perf_counter() - t0
        rows.append({"setting": "radial", "cells": "4096", "kernels": "parallel" if par else "serial", "T": T_end,
                     "steps": s.step, "seconds": el, "risk": flow.observe(s)["risk"], "outflow": s.outflow,
                     "table_build_s": build})
        print(rows[-1], flush=True)
    write("bench_pde", rows, machine())


if __name__ == "__main__":
    main()
