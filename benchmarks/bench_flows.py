"""The other engines at n = 4096, m = 16384: an SGD step, a step of the linearised flow, the empirical NTK and a
population velocity, each against plain NumPy, PyTorch (CPU, no autograd) and JAX (jit) in the same run.

Rows (relu, mean-field scaling, float64, no bias; d = 32, population d = 16 with a 4-neuron teacher):

* ``sgd``: one step of mini-batch SGD (batch B = 512 of n = 4096 points): meanfield's ``flow.advance(state, 1)``
  (batch drawn, velocities on it, update); the peers take a fixed batch and do the same step with dense
  B x m arrays.
* ``linearized``: one Euler step of the network linearised at theta0 (``linearized_flow``) from a point
  theta0 + perturbation. The peers keep sigma(z0) and a0 sigma'(z0) (two n x m arrays) from before the timing,
  as a user would who knows the features are frozen, and per step make X (w - w0)^T, the outputs and the
  velocities.
* ``ntk``: the empirical neural tangent kernel on the n training points, an n x n matrix
  (``meanfield.ntk.empirical_ntk``); the peers form the n x m matrices S = sigma(z) and G = a sigma'(z) and
  compute (S S^T + (X X^T / d) * (G G^T)) / m.
* ``population``: one population velocity evaluation (closed form of the relu kernel, Gaussian inputs),
  ``population_velocities``; the peers build the m x m matrices of the same closed form
  (benchmarks/bench_population.py's NumPy code, ported).

Every (row, implementation) runs in its own process, is first checked against meanfield (relative difference
< 1e-9 on the step, < 1e-10 otherwise), then timed (best of 3; one call after the warm-up for a peer whose check took over 5 s) with its peak memory (VmHWM above the resident
set before the timed calls). A peer that is not installed is reported missing.

    python benchmarks/bench_flows.py           # writes benchmarks/out/flows.{json,md}
    python benchmarks/bench_flows.py --quick   # n = 1024, m = 2048
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from _timing import best_of, blas_info, machine, write
from bench_finite import _status
from bench_population import _problem as population_problem

ROWS = ["sgd", "linearized", "ntk", "population"]
IMPLS = ["meanfield", "numpy", "torch", "jax"]
D, BATCH, DT = 32, 512, 0.01
TOL = {"sgd": 1e-10, "linearized": 1e-9, "ntk": 1e-10, "population": 1e-10}


def _data(n, m, d=D):
    import meanfield as mf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    model = mf.Model(d=d, m=m)
    return model, mf.init_particles(model, 0), X, y


def _perturbed(theta):
    """The state the linearised step starts from: theta0 plus a fixed perturbation."""
    return theta + 0.1 * np.random.default_rng(2).standard_normal(theta.shape)


class _Ops:
    """The array namespace of one peer: numpy, torch or jax.numpy, with the few calls that differ."""

    def __init__(self, impl):
        self.impl = impl
        if impl == "numpy":
            self.xp = np
        elif impl == "torch":
            import torch

            self.xp = torch
        else:
            import jax

            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp

            self.xp = jnp

    def asarray(self, a):
        if self.impl == "torch":
            return self.xp.from_numpy(np.ascontiguousarray(a))
        return self.xp.asarray(a)

    def relu_parts(self, Z):
        """(sigma(Z), sigma'(Z)) of relu, in the peer's dtype."""
        xp = self.xp
        S = xp.maximum(Z, xp.zeros_like(Z)) if self.impl == "torch" else xp.maximum(Z, 0.0)
        return S, (Z > 0).to(Z.dtype) if self.impl == "torch" else (Z > 0).astype(Z.dtype)

    def stack(self, cols):
        return self.xp.column_stack(cols)

    def compile(self, fn):
        if self.impl == "jax":
            import jax

            return jax.jit(fn)
        if self.impl == "torch":
            import torch

            def run(*a):
                with torch.no_grad():
                    return fn(*a)
            return run
        return fn

    def numpy(self, a):
        if self.impl == "jax":
            return np.asarray(a.block_until_ready())
        if self.impl == "torch":
            return a.numpy()
        return a


def peer(row, impl, n, m):
    """(fn, check): fn() runs the timed operation; check() returns what is compared with meanfield."""
    ops = _Ops(impl)
    xp = ops.xp
    if row == "population":
        d = 16
        model, theta, teacher = population_problem(m, d)
        th, T = ops.asarray(theta), ops.asarray(teacher)

        def velocity(th, T):
            a, W = th[:, 0], th[:, 1:]
            at, Wt = T[:, 0], T[:, 1:1 + d]

            def blocks(W1, W2):
                q1 = (W1 * W1).sum(1) / d
                q2 = (W2 * W2).sum(1) / d
                r = W1 @ W2.T / d
                sin_s = xp.sqrt(xp.clip(q1[:, None] * q2[None, :] - r * r, 0.0, None))
                pa = np.pi - xp.arctan2(sin_s, r)
                return (sin_s + pa * r) / (2 * np.pi), sin_s / (2 * np.pi) / q1[:, None], pa / (2 * np.pi)

            K, K1, Kr = blocks(W, W)
            A, Q, Wv = K @ a, K1 @ a, (Kr * a[None, :]) @ W
            Kt, K1t, Krt = blocks(W, Wt)
            tA, tQ, tW = Kt @ at, K1t @ at, Krt @ (at[:, None] * Wt)
            s = 1.0 / m
            return ops.stack([-(s * A - tA)[:, None], -(a[:, None] * ((s * Q - tQ)[:, None] * W + s * Wv - tW) / d)])

        f = ops.compile(velocity)
        return (lambda: ops.numpy(f(th, T))), (lambda: ops.numpy(f(th, T)))

    model, theta, X, y = _data(n, m)
    sd = D ** 0.5
    Xp, yp = ops.asarray(X), ops.asarray(y)

    def features(th, Xb):
        Z = Xb @ th[:, 1:].T / sd
        S, P = ops.relu_parts(Z)
        return S, P * th[:, 0][None, :]

    def velocity(th, S, G, r, Xb):
        nb = Xb.shape[0]
        return ops.stack([(-(r @ S) / nb)[:, None], -((G * r[:, None]).T @ Xb) / (nb * sd)])

    if row == "sgd":
        idx = np.random.default_rng(1).choice(n, BATCH, replace=False)
        Xb, yb = ops.asarray(X[idx]), ops.asarray(y[idx])
        th = ops.asarray(theta)

        def step(th, Xb, yb):
            S, G = features(th, Xb)
            r = S @ th[:, 0] / m - yb
            return th + DT * velocity(th, S, G, r, Xb)

        f = ops.compile(step)
        return (lambda: ops.numpy(f(th, Xb, yb))), (lambda: ops.numpy(f(th, Xb, yb)))
    if row == "linearized":
        theta1 = _perturbed(theta)
        th0, th = ops.asarray(theta), ops.asarray(theta1)
        S0, G0 = features(th0, Xp)  # frozen features, made before the timing
        f0 = S0 @ th0[:, 0] / m

        def step(th, th0, S0, G0, f0, X, y):
            dth = th - th0
            dZ = X @ dth[:, 1:].T / sd
            f = f0 + (S0 @ dth[:, 0] + (G0 * dZ).sum(1)) / m
            return th + DT * velocity(th, S0, G0, f - y, X)

        f = ops.compile(step)
        run = lambda: ops.numpy(f(th, th0, S0, G0, f0, Xp, yp))  # noqa: E731
        return run, run
    if row == "ntk":
        th = ops.asarray(theta)

        def ntk(th, X):
            S, G = features(th, X)
            return (S @ S.T + (X @ X.T / D) * (G @ G.T)) / m

        f = ops.compile(ntk)
        return (lambda: ops.numpy(f(th, Xp))), (lambda: ops.numpy(f(th, Xp)))
    raise ValueError(row)


def ours(row, n, m):
    """(fn, check) for meanfield."""
    import meanfield as mf

    if row == "population":
        import meanfield.population as P

        model, theta, teacher = population_problem(m, 16)
        fn = lambda: P.population_velocities(theta, teacher, model)  # noqa: E731
        return fn, fn
    model, theta, X, y = _data(n, m)
    if row == "sgd":
        idx = np.random.default_rng(1).choice(n, BATCH, replace=False)
        flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=DT, integrator="sgd", batch_size=BATCH))
        state = flow.init(theta)
        # the check: one step on the peers' fixed batch is theta + dt v(batch)
        return (lambda: flow.advance(state, 1).theta), (
            lambda: theta + DT * mf.velocities(theta, X[idx], y[idx], model))
    if row == "linearized":
        theta1 = _perturbed(theta)
        flow = mf.linearized_flow((X, y), model, mf.Dynamics(dt=DT), theta)
        state = flow.init(theta1)
        run = lambda: flow.advance(state, 1).theta  # noqa: E731
        return run, run
    if row == "ntk":
        from meanfield.ntk import empirical_ntk

        fn = lambda: empirical_ntk(theta, X)  # noqa: E731
        return fn, fn
    raise ValueError(row)


def run_one(row, impl, n, m):
    t_first = 0.0
    if impl == "meanfield":
        fn, _ = ours(row, n, m)
    else:
        try:
            fn, check = peer(row, impl, n, m)
        except ImportError as e:
            print(json.dumps({"missing": f"not installed ({e.name})"}))
            return
        t_first = time.perf_counter()
        got = np.asarray(check(), dtype=np.float64)
        t_first = time.perf_counter() - t_first
        want = ours(row, n, m)[1]()
        if row in ("sgd", "linearized"):  # compare the steps, theta_new - theta
            _, theta, _, _ = _data(n, m)
            if row == "linearized":
                theta = _perturbed(theta)
            got, want = got - theta, want - theta
        err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        assert err < TOL[row], (row, impl, err)
    fn()  # compile / warm up
    open("/proc/self/clear_refs", "w").write("5")
    before = _status("VmRSS")
    t = best_of(fn, repeat=3 if t_first < 5.0 else 1, min_time=0.0)  # calls of seconds vary little
    print(json.dumps({"ms": 1e3 * t, "peak_MiB": _status("VmHWM") - before}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one", nargs=4)
    args = ap.parse_args()
    if args.one:
        row, impl, n, m = args.one
        run_one(row, impl, int(n), int(m))
        return
    n, m = (1024, 2048) if args.quick else (4096, 16384)
    rows, t0 = [], time.time()
    for row in ROWS:
        res = {}
        for impl in IMPLS:
            cmd = [sys.executable, __file__, "--one", row, impl, str(n), str(m)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if proc.returncode:
                res[impl] = {"missing": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}
            else:
                res[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
        out = {"row": row, "n": 0 if row == "population" else n, "d": 16 if row == "population" else D, "m": m,
               "batch": BATCH if row == "sgd" else ""}
        for impl, r in res.items():
            out[f"{impl}_ms"] = r.get("ms", r.get("missing"))
        for impl, r in res.items():
            out[f"{impl}_MiB"] = r.get("peak_MiB", float("nan"))
        peers = {k: r["ms"] for k, r in res.items() if k != "meanfield" and "ms" in r}
        fastest = min(peers, key=peers.get) if peers else None
        out["fastest_peer"] = fastest
        out["fastest_peer/meanfield"] = peers[fastest] / res["meanfield"]["ms"] if fastest else float("nan")
        rows.append(out)
        print(out, flush=True)
    meta = machine()
    meta.update(blas_info(), wall_s=time.time() - t0,
                command=" ".join(["python benchmarks/bench_flows.py"] + sys.argv[1:]))
    write("flows", rows, meta)


if __name__ == "__main__":
    main()
