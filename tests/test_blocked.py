"""The two paths of the finite-data kernels (meanfield/_kernels/finite.py and linearized.py), the small one (the
whole batch as one serial tile) and the blocked BLAS one, against the slow NumPy reference (tests/reference.py):
outputs, residuals and velocities to 1e-12 relative in float64 and 1e-5 in float32, for every activation, with
and without bias, on shapes that cut tiles and blocks unevenly (n = 1, m = 1, sizes one off the tile and block
sizes). Also: the public API takes the small path up to SMALL_PAIRS point-particle pairs and the blocked path
beyond, and agrees with the reference on both; symmetric initialisation gives f_0 = 0 exactly on both paths; a
custom activation on the blocked path; bitwise equality at 1 and 2 threads.
"""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import meanfield as mf
import reference as ref
from meanfield._kernels import finite
from meanfield.flow import make_field

PB, TJ = finite.PB, finite.TJ
# (n, d, m): single point / particle, one off the block (PB) and tile (TJ) sizes, several tiles and blocks
SHAPES = [(1, 1, 1), (1, 3, TJ + 1), (PB + 1, 1, 2), (2 * PB + 2, 7, 2 * TJ + 1), (PB, 17, TJ), (3, 64, 1),
          (PB - 1, 5, TJ - 1)]
# the small path: at most SMALL_PAIRS (point, particle) pairs; the last is exactly at the limit
SMALL_SHAPES = [(1, 1, 1), (1, 3, 17), (15, 2, 16), (3, 64, 1), (7, 5, 33), (PB, 4, TJ)]
TOL = {"float64": 1e-12, "float32": 1e-5}


def _evaluate(path, theta, at, field, idx, nb, r=None):
    """(residuals at theta, velocities with the features at ``at``) of one evaluation on ``path``; given ``r``,
    only the velocities (with those residuals)."""
    v = np.empty_like(theta)
    args = (field.act, field.bias)
    if path == "small":
        if r is None:
            r = np.empty(nb, dtype=theta.dtype)
            S, P = finite.features_small(theta, field.X, idx, nb, *args)
            finite._sum_small(S, theta, field.y, idx, nb, field.out_scale, r)
        S, P = finite.features_small(at, field.X, idx, nb, *args)
        finite._weigh_small(theta, at, field.X, idx, nb, r, S, P, field.bias, field.coef, field.D, field.lam, v)
    else:
        if r is None:
            r = np.empty(nb, dtype=theta.dtype)
            finite._residuals_blocked(theta, field.X, field.y, idx, nb, *args, field.out_scale, r)
        finite._velocities_blocked(theta, at, field.X, idx, nb, r, *args, field.coef, field.D, field.lam, v)
    return r, v


def _case(rng, n, d, m, activation, bias, dtype, dyn):
    model = mf.Model(d=d, m=m, activation=activation, bias=bias, sigma_b=0.5, dtype=dtype)
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    return model, theta, make_field(X, y, model, dyn)


@pytest.mark.parametrize("path", ["small", "blocked"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
def test_kernels_match_reference(rng, activation, bias, dtype, path):
    dyn = mf.Dynamics(lr=0.7, layer_lr=(0.5, 2.0, 3.0), weight_decay=0.1)
    for n, d, m in SMALL_SHAPES if path == "small" else SHAPES:
        model, theta, field = _case(rng, n, d, m, activation, bias, dtype, dyn)
        sc = model.scale
        X, y = field.X.astype(np.float64), field.y.astype(np.float64)
        r, v = _evaluate(path, theta, theta, field, np.arange(n), n)
        want_f = ref.outputs(theta, X, activation, bias, sc.alpha, sc.c)
        assert ref.rel_err(r, want_f - y) < TOL[dtype], (n, d, m)
        want_v = ref.velocities(theta, X, y, activation, bias, sc.alpha, sc.beta, sc.c, dyn.lr, dyn.layer_lr,
                                dyn.weight_decay)
        assert ref.rel_err(v, want_v) < TOL[dtype], (n, d, m)
        if path == "small":  # the fused pass the integrators call: the same numbers, bitwise
            r2, v2 = np.empty_like(r), np.empty_like(v)
            finite.field_small(theta, field.X, field.y, np.arange(n), n, field.act, bias, field.out_scale,
                               field.coef, field.D, field.lam, r2, v2)
            assert r2.tobytes() == r.tobytes() and v2.tobytes() == v.tobytes()


def test_blocked_residuals_of_a_batch(rng):
    """The batch idx[:nb] (SGD) is gathered from scattered rows: residuals and velocities of those rows only."""
    n, d, m, nb = 300, 4, 2 * TJ + 3, PB + 7
    model, theta, field = _case(rng, n, d, m, "tanh", True, "float64", mf.Dynamics())
    idx = rng.permutation(n)
    r = np.empty(n)
    finite._residuals_blocked(theta, field.X, field.y, idx, nb, field.act, True, field.out_scale, r)
    rows = idx[:nb]
    want = ref.outputs(theta, field.X[rows], "tanh", True) - field.y[rows]
    assert ref.rel_err(r[:nb], want) < 1e-12
    v = np.empty_like(theta)
    finite._velocities_blocked(theta, theta, field.X, idx, nb, r, field.act, True, field.coef, field.D, 0.0, v)
    assert ref.rel_err(v, ref.velocities(theta, field.X[rows], field.y[rows], "tanh", True)) < 1e-12


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_public_api_takes_the_blocked_path_and_matches_reference(rng, activation):
    n, d, m = 300, 6, 700
    model = mf.Model(d=d, m=m, activation=activation, bias=True, sigma_b=0.5)
    assert n * m > finite.SMALL_PAIRS
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    assert ref.rel_err(mf.outputs(theta, X, model), ref.outputs(theta, X, activation, True)) < 1e-12
    assert ref.rel_err(mf.velocities(theta, X, y, model), ref.velocities(theta, X, y, activation, True)) < 1e-12
    # and the risk as its flow sees it: one Euler step of dt is theta + dt v
    flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.01))
    step = flow.advance(flow.init(theta), 1).theta
    assert ref.rel_err(step - theta, 0.01 * ref.velocities(theta, X, y, activation, True)) < 1e-12


def test_public_api_switches_path_at_small_pairs(rng):
    """Up to SMALL_PAIRS pairs the API's numbers are the small path's, bitwise; one pair more, the blocked path's."""
    d, m = 3, TJ
    model = mf.Model(d=d, m=m, activation="tanh", bias=True, sigma_b=0.5)
    theta = mf.init_particles(model, rng)
    for n, path in [(PB, "small"), (PB + 1, "blocked")]:
        assert (n * m <= finite.SMALL_PAIRS) == (path == "small")
        X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        field = make_field(X, y, model, mf.Dynamics())
        r, v = _evaluate(path, theta, theta, field, np.arange(n), n)
        assert mf.velocities(theta, X, y, model).tobytes() == v.tobytes(), path
        f, zero = np.empty(n), np.zeros(n)
        if path == "small":
            S, _ = finite.features_small(theta, field.X, np.arange(n), n, field.act, True)
            finite._sum_small(S, theta, zero, np.arange(n), n, field.out_scale, f)
        else:
            finite._residuals_blocked(theta, field.X, zero, np.arange(n), n, field.act, True, field.out_scale, f)
        assert mf.outputs(theta, X, model).tobytes() == f.tobytes(), path
        flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.01))
        assert flow.advance(flow.init(theta), 1).theta.tobytes() == (theta + 0.01 * v).tobytes(), path


@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
@pytest.mark.parametrize("bias", [False, True])
def test_symmetric_init_gives_zero_output_exactly_on_both_paths(rng, activation, bias):
    for n, m in [(PB + 1, TJ + 2), (130, 4 * TJ), (17, 1002), (1, 2), (15, 16), (PB, TJ), (5, 1002)]:
        model = mf.Model(d=5, m=m, activation=activation, bias=bias, sigma_b=1.0, symmetric=True)
        X = rng.standard_normal((n, 5))
        f = mf.outputs(mf.init_particles(model, rng), X, model)
        assert np.all(f == 0.0), (n, m)


def _sin(z):
    return math.sin(z)


def _cos(z):
    return math.cos(z)


def test_custom_activation_on_the_blocked_path(rng):
    model = mf.Model(d=3, m=TJ + 5, activation=mf.custom(_sin, _cos, name="sin"), bias=True, sigma_b=0.5)
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((PB + 9, 3)), rng.standard_normal(PB + 9)
    assert X.shape[0] * model.m > finite.SMALL_PAIRS
    assert ref.rel_err(mf.outputs(theta, X, model), ref.outputs(theta, X, np.sin, True)) < 1e-12
    v = mf.velocities(theta, X, y, model)
    assert ref.rel_err(v, ref.velocities(theta, X, y, (np.sin, np.cos), True)) < 1e-12


_THREAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numba
    import numpy as np
    import meanfield as mf
    import meanfield.threads

    meanfield.threads.SERIAL_BELOW = 0  # the parallel kernels at every size
    out = sys.argv[1]
    rng = np.random.default_rng(5)
    model = mf.Model(d=3, m=600, activation="relu", bias=True, sigma_b=0.5)
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((300, 3)), rng.standard_normal(300)
    for name, kw in {"rk4": dict(integrator="rk4"), "sgd": dict(integrator="sgd", batch_size=200)}.items():
        flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.05, seed=9, **kw))
        np.save(f"{out}/{name}.npy", flow.advance(flow.init(theta), 10).theta)
    flow = mf.linearized_flow((X, y), model, mf.Dynamics(dt=0.05, weight_decay=0.1), theta)
    np.save(f"{out}/linearized.npy", flow.advance(flow.init(theta), 10).theta)
    np.save(f"{out}/f.npy", mf.outputs(theta, X, model))
    print(numba.get_num_threads())
    """
)


def test_blocked_path_is_bitwise_identical_with_1_and_2_threads(tmp_path):
    results = {}
    for threads in (1, 2):
        out = tmp_path / str(threads)
        out.mkdir()
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        proc = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(out)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[-1] == str(threads)
        results[threads] = {name: np.load(out / f"{name}.npy") for name in ("rk4", "sgd", "linearized", "f")}
    for name, a in results[1].items():
        assert np.all(np.isfinite(a))
        assert a.tobytes() == results[2][name].tobytes(), name


def _ref_linearized_outputs(theta, theta0, X, activation, bias):
    """f_lin = f(theta0) + s sum_j [(a - a0) sigma(z0) + a0 sigma'(z0) ((w - w0).x / sqrt d + b - b0)], NumPy."""
    d = X.shape[1]
    s, ds = ref.SIGMA[activation]
    a, W, b = ref.split(theta, d, bias)
    a0, W0, b0 = ref.split(theta0, d, bias)
    Z0 = ref.preactivations(theta0, X, bias)
    dZ = X @ (W - W0).T / np.sqrt(d) + (b - b0)[None, :]
    return ref.outputs(theta0, X, activation, bias) + (s(Z0) * (a - a0) + ds(Z0) * a0 * dZ).sum(axis=1) / a.size


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
def test_linearized_outputs_and_frozen_feature_velocities(rng, activation, bias):
    """The linearised network's outputs (features at theta0) and its velocities (finite.velocities with at = theta0,
    weight decay on theta) on both paths, against NumPy."""
    from meanfield._kernels import linearized as lin

    for path, shapes in (("small", SMALL_SHAPES), ("blocked", SHAPES)):
        for n, d, m in shapes:
            model, theta0, field = _case(rng, n, d, m, activation, bias, "float64", mf.Dynamics(weight_decay=0.3))
            theta = theta0 + 0.1 * rng.standard_normal(theta0.shape)
            X, idx = field.X, np.arange(n)
            f0 = ref.outputs(theta0, X, activation, bias)
            out = np.empty(n)
            if path == "small":
                S, P = finite.features_small(theta0, X, idx, n, field.act, bias)
                lin._lin_sum_small(S, P, theta, theta0, X, f0, idx, n, bias, field.out_scale, out)
            else:
                lin._lin_outputs_blocked(theta, theta0, X, f0, idx, n, field.act, bias, field.out_scale, out)
            want_f = _ref_linearized_outputs(theta, theta0, X, activation, bias)
            assert ref.rel_err(out, want_f) < 1e-12, (path, n, d, m)
            r = out - field.y
            _, v = _evaluate(path, theta, theta0, field, idx, n, r=r)
            # the network's velocity at theta0 with residual r (targets f(theta0) - r), decay moved to theta
            want = ref.velocities(theta0, X, f0 - r, activation, bias, weight_decay=0.3) - 0.3 * (theta - theta0)
            assert ref.rel_err(v, want) < 1e-12, (path, n, d, m)
            if path == "small":  # the fused pass of the linearised flow: the same numbers, bitwise
                r2, v2 = np.empty(n), np.empty_like(v)
                lin.lin_field_small(theta, theta0, X, field.y, f0, idx, n, field.act, bias, field.out_scale,
                                    field.coef, field.D, 0.3, r2, v2)
                assert r2.tobytes() == r.tobytes() and v2.tobytes() == v.tobytes()
