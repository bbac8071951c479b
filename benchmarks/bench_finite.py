"""Time one full-batch velocity evaluation on a finite data set: meanfield's fused kernels vs the peers.

One evaluation = outputs f(x_i) on n points + all m particle velocities (relu, mean-field scaling). Peers
compute the same numbers with dense n x m arrays: plain NumPy (BLAS products), PyTorch CPU and JAX (jit), when
installed. Every peer's velocities are checked against meanfield's before timing.

    python benchmarks/bench_finite.py            # writes benchmarks/out/finite.{json,md}
"""

import sys

import numpy as np

import meanfield as mf
from _timing import best_of, machine, write

SIZES = [(256, 8, 512), (1000, 16, 1000), (1200, 64, 1024), (4096, 32, 4096)]


def numpy_velocity(theta, X, y, m):
    d = X.shape[1]
    a, W = theta[:, 0], theta[:, 1:]
    Z = X @ W.T / np.sqrt(d)  # (n, m)
    S = np.maximum(Z, 0.0)
    r = S @ a / m - y
    n = X.shape[0]
    G = (Z > 0) * a  # a sigma'(z)
    va = -(r @ S) / n
    vw = -((G * r[:, None]).T @ X) / (n * np.sqrt(d))
    return np.column_stack([va, vw])


def torch_velocity_fn(theta, X, y, m):
    import torch

    th, Xt, yt = (torch.from_numpy(v) for v in (theta, X, y))
    d, n = X.shape[1], X.shape[0]

    def fn():
        a, W = th[:, 0], th[:, 1:]
        Z = Xt @ W.T / d**0.5
        S = torch.relu(Z)
        r = S @ a / m - yt
        G = (Z > 0).to(Z.dtype) * a
        return torch.column_stack([-(r @ S) / n, -((G * r[:, None]).T @ Xt) / (n * d**0.5)])

    return fn


def jax_velocity_fn(theta, X, y, m):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    d, n = X.shape[1], X.shape[0]

    @jax.jit
    def vel(th, Xj, yj):
        a, W = th[:, 0], th[:, 1:]
        Z = Xj @ W.T / jnp.sqrt(d)
        S = jnp.maximum(Z, 0.0)
        r = S @ a / m - yj
        G = (Z > 0) * a
        return jnp.column_stack([-(r @ S) / n, -((G * r[:, None]).T @ Xj) / (n * jnp.sqrt(d))])

    thj, Xj, yj = jnp.asarray(theta), jnp.asarray(X), jnp.asarray(y)
    return lambda: vel(thj, Xj, yj).block_until_ready()


def main():
    rows = []
    rng = np.random.default_rng(0)
    for n, d, m in SIZES:
        X = rng.standard_normal((n, d))
        y = rng.standard_normal(n)
        model = mf.Model(d=d, m=m)
        theta = mf.init_particles(model, 0)
        ours = mf.velocities(theta, X, y, model)
        peers = {"numpy": lambda: numpy_velocity(theta, X, y, m)}
        for name, make in (("torch", torch_velocity_fn), ("jax", jax_velocity_fn)):
            try:
                peers[name] = make(theta, X, y, m)
            except ImportError:
                print(f"{name} not installed: skipped", file=sys.stderr)
        row = {"n": n, "d": d, "m": m}
        t_ours = best_of(lambda: mf.velocities(theta, X, y, model))
        row["meanfield_ms"] = 1e3 * t_ours
        for name, fn in peers.items():
            err = np.max(np.abs(np.asarray(fn()) - ours)) / np.max(np.abs(ours))
            assert err < 1e-10, (name, err)
            t = best_of(fn)
            row[f"{name}_ms"] = 1e3 * t
            row[f"{name}/meanfield"] = t / t_ours
        row["meanfield_GMAC/s"] = 2 * n * m * d / t_ours / 1e9
        rows.append(row)
        print(row, flush=True)
    write("finite", rows, machine())


if __name__ == "__main__":
    main()
