"""Threads on a busy machine: one gradient step at 1 thread, at N threads, and under meanfield's rule.

For each shape (n, d, m) of the finite-data particle flow (relu, mean-field scaling, float64, Euler), of the
population flow (Gaussian inputs, a 2-neuron relu teacher, closed form) and of online SGD (batch n), time one
step (``flow.advance(state, k)`` divided by k) three ways, on a quiet machine and again while this script keeps
N - 1 other cores busy with spinning processes (the load a sweep's other workers put on a worker):

* ``1 thread``: ``numba.set_num_threads(1)``;
* ``N threads, forced``: N threads whatever the size (``meanfield.threads.SERIAL_BELOW`` and
  ``POPULATION_SERIAL_BELOW`` set to 0);
* ``rule``: meanfield's default, one thread below ``SERIAL_BELOW`` work (points, batch or particles + teacher
  neurons, times m p; ``POPULATION_SERIAL_BELOW`` for the population flow), N threads above.

The ratios ``forced / 1 thread`` locate the size from which threads pay; the rule must never be more than 10 %
slower than one thread, busy or quiet.

    python benchmarks/bench_threads.py          # writes benchmarks/out/threads.{json,md}
"""

import multiprocessing as mp
import os
import time

import numba
import numpy as np

import meanfield.threads as T
from _timing import machine, write
from meanfield.data import random_teacher
from meanfield.flow import Dynamics, particle_flow
from meanfield.population import online_flow, population_flow
from meanfield.model import Model, init_particles

#: (flow, n, d, m): n is the number of points (finite), the batch (online SGD) or unused (population, k = 2).
SHAPES = [(15, 2, 16), (64, 4, 64), (128, 4, 128), (128, 8, 128), (256, 8, 192), (256, 8, 256), (256, 8, 512), (512, 16, 512),
          (640, 16, 640), (768, 16, 768),
          (1000, 16, 1000), (4096, 32, 4096)]
SHAPES = [("finite", *s) for s in SHAPES] + [
    ("population", 0, 4, 16), ("population", 0, 4, 64), ("population", 0, 4, 256), ("population", 0, 4, 1024),
    ("population", 0, 4, 2048),
    ("online", 32, 4, 64), ("online", 256, 8, 256), ("online", 1024, 16, 1024)]


def _spin(stop):
    x = 0
    while not stop.is_set():
        x += 1


def step_seconds(flow, state, min_time=0.3, repeat=5):
    """Best time of one step over `repeat` rounds of at least `min_time` seconds each."""
    flow.advance(state, 2)
    k, t0 = 1, time.perf_counter()
    flow.advance(state, 1)
    once = time.perf_counter() - t0
    k = max(1, int(0.05 / max(once, 1e-7)))
    best = float("inf")
    for _ in range(repeat):
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < min_time:
            flow.advance(state, k)
            steps += k
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def make_flow(kind, n, d, m):
    rng = np.random.default_rng(0)
    model = Model(d=d, m=m)
    if kind == "finite":
        X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        return particle_flow((X, y), model, Dynamics(dt=1e-4)), model, n * m * (d + 1)
    teacher = random_teacher(d, 2, seed=0)
    if kind == "population":
        return population_flow(teacher, model, Dynamics(dt=1e-4)), model, (m + 2) * m * (d + 1)
    return online_flow(teacher, model, Dynamics(dt=1e-4, integrator="sgd", batch_size=n)), model, n * m * (d + 1)


def measure(shape, threads):
    flow, model, _ = make_flow(*shape)
    rng = np.random.default_rng(0)
    state = flow.init(init_particles(model, rng))
    rule = T.SERIAL_BELOW, T.POPULATION_SERIAL_BELOW
    out = {}
    try:
        numba.set_num_threads(1)
        out["1 thread"] = step_seconds(flow, state)
        numba.set_num_threads(threads)
        T.SERIAL_BELOW = T.POPULATION_SERIAL_BELOW = 0
        out[f"{threads} threads, forced"] = step_seconds(flow, state)
        T.SERIAL_BELOW, T.POPULATION_SERIAL_BELOW = rule
        out["rule"] = step_seconds(flow, state)
    finally:
        T.SERIAL_BELOW, T.POPULATION_SERIAL_BELOW = rule
        numba.set_num_threads(threads)
    return out


def main():
    threads = numba.config.NUMBA_NUM_THREADS
    rows = []
    for load in (0, threads - 1):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
        for p in spinners:
            p.start()
        try:
            for shape in SHAPES:
                t = measure(shape, threads)
                one, forced, rule = t.values()
                kind, n, d, m = shape
                work = make_flow(*shape)[2]
                rows.append({"busy cores": load, "flow": kind, "n, d, m": f"{n}, {d}, {m}", "work": work,
                             "1 thread (us/step)": one * 1e6, f"{threads} threads (us/step)": forced * 1e6,
                             "rule (us/step)": rule * 1e6, "forced / 1": forced / one, "rule / 1": rule / one,
                             "serial under rule": work < (T.POPULATION_SERIAL_BELOW if kind == "population"
                                                          else T.SERIAL_BELOW)})
                print(rows[-1], flush=True)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    meta = machine()
    meta.update(threads=threads, serial_below=T.SERIAL_BELOW, population_serial_below=T.POPULATION_SERIAL_BELOW, threading_layer=numba.threading_layer(),
                omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(default)"))
    write("threads", rows, meta)


if __name__ == "__main__":
    main()
