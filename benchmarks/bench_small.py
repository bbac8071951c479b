"""Steps per second on a small problem: many explicit-Euler steps of full-batch gradient descent.

The problem of issue 15: n = 15 points, d = 2, m = 16 particles, relu, mean-field scaling, float64, dt = 0.01.
meanfield runs `flow.advance(state, K)` (all K steps in one compiled call, through the public API: validation
and thread rule included); the peers run the same K steps the way a user would write them: a Python loop over
plain NumPy or PyTorch (CPU, no autograd) steps, and JAX with the whole loop compiled (`jax.jit` of
`lax.fori_loop`). Each implementation runs in its own process and is first checked to reach the same particles
after K steps (relative difference < 1e-10). Start-up (imports, compilation) is excluded: best of 5 rounds
after a warm-up.

    python benchmarks/bench_small.py             # writes benchmarks/out/small.{json,md}
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from _timing import best_of, machine, write
from bench_finite import numpy_velocity

N, D, M = 15, 2, 16
DT = 0.01
IMPLS = ["meanfield", "numpy", "torch", "jax"]
CHECK_STEPS = 200


def _problem():
    import meanfield as mf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    y = rng.standard_normal(N)
    model = mf.Model(d=D, m=M)
    return model, mf.init_particles(model, 0), X, y


def runner(impl, theta0, X, y, model):
    """A function k -> particles after k Euler steps from theta0."""
    if impl == "meanfield":
        import meanfield as mf

        flow = mf.particle_flow((X, y), model, mf.Dynamics(lr=1.0, dt=DT))
        state = flow.init(theta0)
        return lambda k: flow.advance(state, k).theta
    if impl == "numpy":
        def run(k):
            th = theta0.copy()
            for _ in range(k):
                th += DT * numpy_velocity(th, X, y, M)
            return th
        return run
    if impl == "torch":
        import torch

        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        sd = D ** 0.5

        def run(k):
            th = torch.from_numpy(theta0.copy())
            with torch.no_grad():
                for _ in range(k):
                    a, W = th[:, 0], th[:, 1:]
                    Z = Xt @ W.T / sd
                    S = torch.relu(Z)
                    r = S @ a / M - yt
                    G = (Z > 0).to(Z.dtype) * a
                    th += DT * torch.column_stack([-(r @ S) / N, -((G * r[:, None]).T @ Xt) / (N * sd)])
            return th.numpy()
        return run
    if impl == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from functools import partial

        sd = D ** 0.5

        def step(_, th, Xj, yj):
            a, W = th[:, 0], th[:, 1:]
            Z = Xj @ W.T / sd
            S = jnp.maximum(Z, 0.0)
            r = S @ a / M - yj
            G = (Z > 0) * a
            return th + DT * jnp.column_stack([-(r @ S) / N, -((G * r[:, None]).T @ Xj) / (N * sd)])

        @partial(jax.jit, static_argnums=0)
        def many(k, th, Xj, yj):
            return jax.lax.fori_loop(0, k, lambda i, t: step(i, t, Xj, yj), th)

        thj, Xj, yj = jnp.asarray(theta0), jnp.asarray(X), jnp.asarray(y)
        return lambda k: np.asarray(many(k, thj, Xj, yj).block_until_ready())
    raise ValueError(impl)


def run_one(impl, steps):
    model, theta0, X, y = _problem()
    try:
        run = runner(impl, theta0, X, y, model)
    except ImportError as e:
        print(json.dumps({"missing": f"not installed ({e.name})"}))
        return
    want = runner("numpy", theta0, X, y, model)(CHECK_STEPS)
    got = np.asarray(run(CHECK_STEPS), dtype=np.float64)
    err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    assert err < 1e-10, (impl, err)
    t = best_of(lambda: run(steps), repeat=5, min_time=0.2)
    print(json.dumps({"steps_per_s": steps / t, "us_per_step": 1e6 * t / steps, "steps_per_call": steps,
                      "check_rel_err": err}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=2)
    args = ap.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]))
        return
    t0 = time.time()
    res = {}
    for impl in IMPLS:
        steps = 20_000 if impl in ("meanfield", "jax") else 2_000
        proc = subprocess.run([sys.executable, __file__, "--one", impl, str(steps)], capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode:
            res[impl] = {"missing": "failed: " + proc.stderr.strip().splitlines()[-1]}
        else:
            res[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(impl, res[impl], flush=True)
    ours = res["meanfield"]["steps_per_s"]
    rows = []
    for impl, r in res.items():
        rows.append({"implementation": impl, "steps/s": r.get("steps_per_s", r.get("missing")),
                     "us/step": r.get("us_per_step", float("nan")), "steps per timed call": r.get("steps_per_call", ""),
                     "meanfield speed / this": ours / r["steps_per_s"] if "steps_per_s" in r else float("nan")})
    meta = machine()
    meta.update(problem={"n": N, "d": D, "m": M, "activation": "relu", "integrator": "euler", "dt": DT},
                wall_s=time.time() - t0, command="python benchmarks/bench_small.py")
    write("small", rows, meta)


if __name__ == "__main__":
    main()
