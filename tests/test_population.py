"""Tests of meanfield.population: closed forms against Monte Carlo (4 standard errors) and against quadrature
(1e-10), velocities against central finite differences of the risk, the pairwise kernel against a slow
m x m NumPy reference, bitwise thread-count invariance (subprocesses), online SGD against the population
velocity (1/sqrt(n) law), a student placed on the teacher (zero risk and velocity), and config errors."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from meanfield import population as P
from meanfield._kernels import population as kp
from meanfield.data import random_teacher, teacher_outputs
from meanfield.errors import ConfigError
from meanfield.flow import Dynamics, velocities
from meanfield.model import Model, init_particles
from meanfield.scaling import get_scaling

SMOOTH_QP = {"tanh": 160, "sigmoid": 120, "softplus": 120}  # Gauss-Hermite nodes for ~1e-10 accuracy
SCALINGS = {
    "mean_field": dict(scaling="mean_field"),
    "ntk": dict(scaling="ntk"),
    "lazy": dict(scaling="lazy", lazy_scale=3.0),
    "explicit": dict(scaling=get_scaling("explicit", alpha=0.7, beta=0.3, c=2.0)),
}


def _pair_inputs(rng, n=5, bias=True):
    w1, w2 = rng.standard_normal((2, n, 4))
    q1, q2 = (w1 * w1).sum(1) / 4, (w2 * w2).sum(1) / 4
    r = (w1 * w2).sum(1) / 4
    b1, b2 = (0.6 * rng.standard_normal((2, n))) if bias else (np.zeros(n), np.zeros(n))
    return q1, q2, r, b1, b2


@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
@pytest.mark.parametrize("bias", [False, True])
def test_kernel_and_teacher_overlap_against_monte_carlo(rng, activation, bias):
    d, n = 3, 10**6
    teacher = random_teacher(d, 2, bias=bias, seed=5)
    model = Model(d=d, m=2, activation=activation, bias=bias, sigma_b=0.7)
    theta = init_particles(model, rng)
    X = rng.standard_normal((n, d))
    s = ref.SIGMA[activation][0]
    Z = ref.preactivations(theta, X, bias)  # (n, 2)
    qp = SMOOTH_QP.get(activation, 64)
    # K(theta_0, theta_1)
    prod = s(Z[:, 0]) * s(Z[:, 1])
    K = P.population_kernel(theta, theta, d, activation, quad_points=qp)[0, 1]
    assert abs(K - prod.mean()) < 4 * prod.std() / math.sqrt(n)
    # E_x[f*(x) sigma(u_j)] = sum_k a*_k K(theta_j, theta*_k)
    fstar = teacher_outputs(teacher, X, activation)
    for j in range(2):
        prod = fstar * s(Z[:, j])
        Kt = P.population_kernel(theta[j : j + 1], teacher, d, activation, quad_points=qp)[0] @ teacher[:, 0]
        assert abs(Kt - prod.mean()) < 4 * prod.std() / math.sqrt(n)
    # E_x[f*^2]
    e = P.teacher_energy(teacher, d, activation, quad_points=qp)
    assert abs(e - (fstar**2).mean()) < 4 * (fstar**2).std() / math.sqrt(n)


@pytest.mark.parametrize("activation", ["relu", "erf", "identity", "quadratic"])
def test_quadrature_matches_closed_forms(rng, activation):
    bias = activation in ("identity", "quadratic")
    args = _pair_inputs(rng, 20, bias=bias)
    closed = P.pair_expectations(activation, *args, method="closed")
    quad = P.pair_expectations(activation, *args, method="quadrature")  # the default number of nodes
    for c, q in zip(closed, quad):
        np.testing.assert_allclose(q, c, rtol=0, atol=1e-10 * max(1.0, np.abs(c).max()))


def test_closed_form_derivatives_by_finite_differences(rng):
    q1, q2, r, b1, b2 = (v[0] for v in _pair_inputs(rng, 1))
    for act, bias in (("relu", False), ("erf", False), ("quadratic", True), ("identity", True), ("relu", True)):
        bb1, bb2 = (b1, b2) if bias else (0.0, 0.0)
        f = lambda *a: float(P.pair_expectations(act, *a).K)  # noqa: E731
        e = P.pair_expectations(act, q1, q2, r, bb1, bb2)
        h = 1e-6
        fd_q1 = (f(q1 + h, q2, r, bb1, bb2) - f(q1 - h, q2, r, bb1, bb2)) / (2 * h)
        fd_r = (f(q1, q2, r + h, bb1, bb2) - f(q1, q2, r - h, bb1, bb2)) / (2 * h)
        fd_b1 = (f(q1, q2, r, bb1 + h, bb2) - f(q1, q2, r, bb1 - h, bb2)) / (2 * h)
        assert abs(2 * fd_q1 - e.K1) < 1e-7 and abs(fd_r - e.Kr) < 1e-7 and abs(fd_b1 - e.Kb1) < 1e-7, act


def test_angle_against_atan2(rng):
    y = np.abs(np.concatenate([rng.standard_normal(10000), np.logspace(-12, 3, 200), [0.0]]))
    x = np.concatenate([rng.standard_normal(10000), rng.standard_normal(200), [1.0]])
    got = np.array([kp.angle(a, b) for a, b in zip(y[:2000], x[:2000])] +
                   [kp.angle(a, b) for a, b in zip(y[-201:], x[-201:])])
    want = np.arctan2(np.r_[y[:2000], y[-201:]], np.r_[x[:2000], x[-201:]])
    nz = want != 0
    assert np.max(np.abs(got[nz] - want[nz]) / want[nz]) < 1e-13 and np.all(got[~nz] == 0)


CASES = [("relu", False), ("relu", True), ("erf", False), ("erf", True), ("identity", True), ("quadratic", True),
         ("tanh", True)]


@pytest.mark.parametrize("activation,bias", CASES)
@pytest.mark.parametrize("scaling", ["mean_field", "explicit"])
def test_velocities_are_minus_gradient_of_risk(rng, activation, bias, scaling):
    d, m = 2, 5
    model = Model(d=d, m=m, activation=activation, bias=bias, sigma_b=0.5, **SCALINGS[scaling])
    theta = init_particles(model, rng)
    teacher = random_teacher(d, 2, bias=True, seed=2)
    if not bias:
        teacher = teacher[:, :-1]
    qp = SMOOTH_QP.get(activation, 64)
    dyn = Dynamics(lr=0.7, layer_lr=(1.3, 0.8, 1.1), weight_decay=0.05)
    v = P.population_velocities(theta, teacher, model, dyn, quad_points=qp)
    grad = np.zeros_like(theta)
    eps = 1e-5
    for j in range(m):
        for q in range(model.p):
            tp, tm = theta.copy(), theta.copy()
            tp[j, q] += eps
            tm[j, q] -= eps
            grad[j, q] = (P.population_risk(tp, teacher, model, quad_points=qp)
                          - P.population_risk(tm, teacher, model, quad_points=qp)) / (2 * eps)
    sc = model.scale
    D = np.r_[1.3, np.full(d, 0.8), [1.1] if bias else []]
    want = -0.7 * m**sc.beta / sc.c**2 * D * grad - 0.05 * theta
    assert np.max(np.abs(v - want)) / np.max(np.abs(want)) < 1e-6


def _slow_relu_velocities(theta, teacher, d, alpha=1.0, beta=1.0, c=1.0):
    """Population velocity for relu without bias from explicit (m, m) arrays (arccos, not the kernel's angle)."""
    m = theta.shape[0]
    a, W = theta[:, 0], theta[:, 1:]

    def parts(W1, W2):
        q1, q2 = (W1**2).sum(1) / d, (W2**2).sum(1) / d
        r = W1 @ W2.T / d
        s = np.sqrt(np.outer(q1, q2))
        ang = np.arccos(np.clip(r / s, -1, 1))
        K = s * (np.sin(ang) + (np.pi - ang) * np.cos(ang)) / (2 * np.pi)
        K1 = np.sqrt(q2[None, :] / q1[:, None]) * np.sin(ang) / (2 * np.pi)
        Kr = (np.pi - ang) / (2 * np.pi)
        return K, K1, Kr

    s_out = c * m**-alpha
    K, K1, Kr = parts(W, W)
    Kt, K1t, Krt = parts(W, teacher[:, 1:])
    at, Wt = teacher[:, 0], teacher[:, 1:]
    g0 = s_out * K @ a - Kt @ at
    gw = a[:, None] * ((s_out * K1 @ a - K1t @ at)[:, None] * W + s_out * (Kr * a) @ W - (Krt * at) @ Wt) / d
    return -(m ** (beta - alpha) / c) * np.column_stack([g0, gw])


@pytest.mark.parametrize("m", [1, 7, 64, 65, 333])
def test_pairwise_kernel_against_mxm_reference(rng, m):
    d = 5
    model = Model(d=d, m=m, activation="relu")
    theta = init_particles(model, rng)
    teacher = random_teacher(d, 3, seed=1)
    v = P.population_velocities(theta, teacher, model)
    want = _slow_relu_velocities(theta, teacher, d)
    np.testing.assert_allclose(v, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_generic_pairwise_path_against_pair_table(rng):
    """The generic (not relu) symmetric path, quadratic with biases (closed form, so the ordered and unordered
    evaluations agree to rounding), 150 particles over three blocks, against explicit (m, m) pair tables."""
    d, m = 3, 150
    model = Model(d=d, m=m, activation="quadratic", bias=True, sigma_b=0.5, scaling="ntk")
    theta = init_particles(model, rng)
    teacher = random_teacher(d, 2, bias=True, seed=4)
    v = P.population_velocities(theta, teacher, model)
    a, W, b = theta[:, 0], theta[:, 1 : 1 + d], theta[:, -1]

    def G(W2, b2, a2):
        q1 = (W**2).sum(1)[:, None] / d
        q2 = (W2**2).sum(1)[None, :] / d
        r = W @ W2.T / d
        if W2 is W:
            np.fill_diagonal(r, q1[:, 0])  # a particle with itself: r = q exactly, as in the kernel
        e = P.pair_expectations("quadratic", q1, q2, r, b[:, None], b2[None, :])
        return np.column_stack([e.K @ a2, a[:, None] * (((e.K1 @ a2)[:, None] * W + (e.Kr * a2) @ W2) / d),
                                a * (e.Kb1 @ a2)])

    s = m**-0.5
    want = -(m**-0.5) * (s * G(W, b, a) - G(teacher[:, 1 : 1 + d], teacher[:, -1], teacher[:, 0]))
    np.testing.assert_allclose(v, want, rtol=0, atol=1e-12 * np.abs(want).max())


_THREAD_SCRIPT = r"""
import json, numpy as np
from meanfield import population as P
from meanfield.model import Model, init_particles
from meanfield.flow import Dynamics
from meanfield.data import random_teacher
import meanfield.threads
meanfield.threads.SERIAL_BELOW = meanfield.threads.POPULATION_SERIAL_BELOW = 0  # parallel kernels at every size
out = {}
for act, bias, m in (("relu", False, 1100), ("erf", True, 140)):
    model = Model(d=4, m=m, activation=act, bias=bias, sigma_b=0.3)
    th = init_particles(model, 0)
    T = random_teacher(4, 3, bias=bias, seed=0)
    out[act] = P.population_velocities(th, T, model).tobytes().hex()
model = Model(d=4, m=50, activation="tanh")
f = P.online_flow(random_teacher(4, 2, seed=1), model, Dynamics(dt=0.1, integrator="sgd", batch_size=33, temperature=0.01))
out["online"] = f.advance(f.init(init_particles(model, 2)), 5).theta.tobytes().hex()
print(json.dumps(out))
"""


def test_bitwise_identical_across_thread_counts():
    res = []
    for nt in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=nt)
        p = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True,
                           check=True)
        res.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert res[0] == res[1]


def test_online_velocities_average_to_population_velocity(rng):
    d, m = 3, 4
    model = Model(d=d, m=m, activation="erf")
    theta = init_particles(model, rng)
    teacher = random_teacher(d, 2, seed=7)
    v_pop = P.population_velocities(theta, teacher, model)
    errs, ses = [], []
    for n in (2_000, 32_000):
        X = rng.standard_normal((n, d))
        y = teacher_outputs(teacher, X, "erf")
        per = np.stack([velocities(theta, X[i : i + 1], y[i : i + 1], model) for i in range(0, 400)])
        v = velocities(theta, X, y, model)  # the mean over n fresh samples
        errs.append(np.sqrt(np.mean((v - v_pop) ** 2)))
        ses.append(np.sqrt(np.mean(per.var(axis=0)) / n))
        z = np.abs(v - v_pop) / np.sqrt(per.var(axis=0) / n)
        assert z.max() < 5
    # error shrinks like 1/sqrt(n): 16 x the samples, 4 x smaller (within a factor 2 either way)
    assert 2 < errs[0] / errs[1] < 8


def test_online_flow_step_is_euler_step_on_fresh_batch():
    d, m, B = 3, 6, 17
    model = Model(d=d, m=m, activation="relu")
    theta = init_particles(model, 3)
    teacher = random_teacher(d, 2, seed=1)
    dyn = Dynamics(lr=0.5, dt=0.1, integrator="sgd", batch_size=B, seed=11)
    flow = P.online_flow(teacher, model, dyn)
    s1 = flow.advance(flow.init(theta), 1)
    X, y = np.empty((B, d)), np.empty(B)
    kp.pop_online_batch(np.hstack([teacher, np.zeros((2, 1))]), 1, 11, 0, X, y, 2)
    np.testing.assert_allclose(y, teacher_outputs(teacher, X, "relu"), rtol=1e-14, atol=1e-15)
    want = theta + 0.1 * velocities(theta, X, y, model, dyn)
    np.testing.assert_allclose(s1.theta, want, rtol=1e-13, atol=1e-15)
    # the inputs are standard normals
    Xs = np.empty((4000, d))
    kp.pop_online_batch(np.hstack([teacher, np.zeros((2, 1))]), 1, 11, 5, Xs, np.empty(4000), 2)
    assert abs(Xs.mean()) < 4 / math.sqrt(Xs.size) and abs(Xs.var() - 1) < 4 * math.sqrt(2 / Xs.size)


@pytest.mark.parametrize("activation,bias", CASES)
@pytest.mark.parametrize("scaling", sorted(SCALINGS))
def test_student_at_teacher_has_zero_risk_and_velocity(activation, bias, scaling):
    """m = k particles with w_j = w*_j, b_j = b*_j and a_j = a*_j m^alpha / c, so that f = f* exactly."""
    d, k = 3, 3
    model = Model(d=d, m=k, activation=activation, bias=bias, **SCALINGS[scaling])
    teacher = random_teacher(d, k, bias=bias, seed=9)
    theta = teacher.copy()
    sc = model.scale
    theta[:, 0] = teacher[:, 0] * k**sc.alpha / sc.c
    qp = SMOOTH_QP.get(activation, 64)
    energy = P.teacher_energy(teacher, d, activation, quad_points=qp)
    assert abs(P.population_risk(theta, teacher, model, quad_points=qp)) < 1e-14 * energy
    v = P.population_velocities(theta, teacher, model, quad_points=qp)
    assert np.max(np.abs(v)) < 1e-13 * max(1.0, k ** (sc.beta - sc.alpha) / sc.c)


@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4"])
def test_population_flow_decreases_risk(integrator):
    d = 2
    model = Model(d=d, m=20, activation="erf")
    teacher = random_teacher(d, 2, seed=0)
    flow = P.population_flow(teacher, model, Dynamics(dt=0.2, integrator=integrator))
    s = flow.init(init_particles(model, 0))
    risks = [flow.problem.risks(s.theta, model)["population_risk"]]
    for _ in range(10):
        s = flow.advance(s, 5)
        risks.append(flow.problem.risks(s.theta, model)["population_risk"])
    assert np.all(np.diff(risks) < 0)
    assert risks[-1] == P.population_risk(s.theta, teacher, model)


def test_langevin_and_weight_decay_run_and_rk4_converges():
    d = 2
    model = Model(d=d, m=8, activation="relu")
    teacher = random_teacher(d, 2, seed=0)
    theta = init_particles(model, 0)
    dyn = Dynamics(dt=0.05, integrator="euler_maruyama", temperature=0.01, weight_decay=0.1, seed=3)
    f = P.population_flow(teacher, model, dyn)
    a = f.advance(f.init(theta), 20).theta
    b = f.advance(f.advance(f.init(theta), 7), 13).theta  # resumable from (seed, step)
    assert np.array_equal(a, b) and not np.array_equal(a, theta)
    # RK4 is fourth order: halving dt divides the error at t = 1 by ~16
    end = {}
    for dt in (0.1, 0.05, 0.025):
        g = P.population_flow(teacher, model, Dynamics(dt=dt, integrator="rk4"))
        end[dt] = g.advance(g.init(theta), int(round(1 / dt))).theta
    e1, e2 = np.abs(end[0.1] - end[0.025]).max(), np.abs(end[0.05] - end[0.025]).max()
    assert 10 < e1 / e2 < 25


def test_config_errors():
    model = Model(d=2, m=4)
    T = random_teacher(2, 2, seed=0)
    with pytest.raises(ConfigError, match="dynamics.integrator"):
        P.population_flow(T, model, Dynamics(integrator="sgd", batch_size=3))
    with pytest.raises(ConfigError, match="dynamics.integrator"):
        P.online_flow(T, model, Dynamics())
    with pytest.raises(ConfigError, match="teacher"):
        P.population_flow(np.zeros((2, 7)), model, Dynamics())
    with pytest.raises(ConfigError, match="method"):
        P.population_risk(init_particles(model, 0), T, Model(d=2, m=4, activation="tanh"), method="closed")
    with pytest.raises(ConfigError, match="quad_points"):
        P.pair_expectations("tanh", 1.0, 1.0, 0.5, quad_points=2)


# ---------------------------------------------------------------------------------------------------------
# accuracy contract (issue 16): mpmath references, identities between activations, refused settings
# ---------------------------------------------------------------------------------------------------------

with open(os.path.join(os.path.dirname(__file__), "data", "mpmath_refs.json")) as _f:
    REFS = json.load(_f)  # made by tests/make_mpmath_refs.py
FIELDS = REFS["fields"]


def _close(got, want, what, scale=None):
    """Relative 1e-12, or absolute 1e-14 of the natural scale for values near zero (by default the case's largest
    quantity; for pairs max(1, sqrt(q1 q2)), the size of K, K_r, ... for unit-order variances)."""
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    scale = max(np.max(np.abs(want)), scale or 0.0)
    err = np.abs(got - want)
    ok = err <= 1e-12 * np.abs(want) + 1e-14 * scale
    assert np.all(ok), f"{what}: max error {np.max(err / np.maximum(np.abs(want), 1e-14 * scale)):.3g} (relative)"


@pytest.mark.parametrize("case", REFS["pairs"], ids=lambda c: f"{c['act']}-{c['q1']}-{c['r']}-{c['b1']}")
def test_pair_expectations_against_mpmath(case):
    """Every built-in activation, default settings, against arbitrary-precision integrals: large variances
    (|w|^2/d up to 1e4) with biases, near-parallel, antiparallel, tiny and zero variances."""
    want = [float(v) for v in case["values"]]
    got = P.pair_expectations(case["act"], case["q1"], case["q2"], case["r"], case["b1"], case["b2"])
    _close([float(g) for g in got], want, case, max(1.0, math.sqrt(case["q1"] * case["q2"])))
    # and K through population_kernel when the inputs come from weight vectors with these q, r is
    # covered by test_near_parallel_pairs_from_vectors_against_mpmath


@pytest.mark.parametrize("case", REFS["vectors"], ids=lambda c: f"{c['act']}-{c['w2'][0]}")
def test_near_parallel_pairs_from_vectors_against_mpmath(case):
    """Near-parallel and antiparallel weight vectors (angle ~1e-10): 1 - rho^2 comes from the vectors
    without cancellation, so relu's infinite slope at rho = +-1 does not amplify rounding (issue 16)."""
    d = len(case["w1"])
    t1 = np.array([[1.0, *case["w1"], case["b1"]]])
    t2 = np.array([[1.0, *case["w2"], case["b2"]]])
    want = [float(v) for v in case["values"]]
    q1, q2, r, det = P.pair_determinant(t1[:, 1 : 1 + d], t2[:, 1 : 1 + d])
    got = P._pair_table(case["act"], q1, q2, r, det, case["b1"], case["b2"], "auto", None)
    scale = max(1.0, math.sqrt(float(q1[0, 0] * q2[0, 0])))
    _close([float(np.ravel(g)[0]) for g in got], want, case, scale)
    _close(P.population_kernel(t1, t2, d, case["act"])[0, 0], want[0], case, scale)
    # the velocity kernel's own determinant (numba, rows of theta and teacher): student j against teacher k
    # makes the pair; with a = 1, m = 1, mean-field scaling, no weight decay, the a-velocity is
    # -(K(theta, theta) - K(theta, teacher)) and its teacher part is the reference K
    bias = case["b1"] != 0 or case["b2"] != 0
    model = Model(d=d, m=1, activation=case["act"], bias=bias)
    theta = t1 if bias else t1[:, :-1]
    v_with = P.population_velocities(theta, t2, model)[0, 0]
    v_without = P.population_velocities(theta, t2 * np.r_[0.0, np.ones(d + 1)], model)[0, 0]
    _close(v_with - v_without, want[0], case, scale)


@pytest.mark.parametrize("case", REFS["risk"], ids=lambda c: c["act"])
def test_risk_and_velocities_against_mpmath(case):
    theta, teacher = np.array(case["theta"]), np.array(case["teacher"])
    d = teacher.shape[1] - 2
    sc = get_scaling("explicit", alpha=case["alpha"], beta=case["beta"], c=case["c"])
    model = Model(d=d, m=theta.shape[0], activation=case["act"], bias=case["bias"], scaling=sc)
    dyn = Dynamics(lr=case["lr"], layer_lr=tuple(case["layer_lr"]), weight_decay=case["weight_decay"])
    _close(P.population_risk(theta, teacher, model), float(case["risk"]), "risk")
    want = np.array([[float(v) for v in row] for row in case["velocities"]])
    got = P.population_velocities(theta, teacher, model, dyn)
    assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want)), np.max(np.abs(got - want))


def _rand_pairs(rng, n):
    """Random variances up to 25 (|w|^2/d), biases, angles including near-parallel and antiparallel."""
    q1 = np.exp(rng.uniform(np.log(1e-3), np.log(25.0), n))
    q2 = np.exp(rng.uniform(np.log(1e-3), np.log(25.0), n))
    rho = np.concatenate([rng.uniform(-1, 1, n - 4), [1 - 1e-9, -1 + 1e-9, 1.0, -1.0]])
    r = rho * np.sqrt(q1 * q2)
    b1, b2 = rng.normal(0, 1.0, (2, n))
    return q1, q2, r, b1, b2


def test_tanh_and_sigmoid_kernels_agree_through_tanh_equals_two_sigmoid_minus_one(rng):
    """tanh z = 2 s(2z) - 1 for the logistic s: E[tanh u tanh v] = 4 E[s(2u)s(2v)] - 2 E s(2u) - 2 E s(2v) + 1
    and E[tanh' u tanh' v] = 16 E[s'(2u)s'(2v)]: two different integrands (different singularities and
    meshes) that must agree, over random variances, biases and angles."""
    q1, q2, r, b1, b2 = _rand_pairs(rng, 40)
    t = P.pair_expectations("tanh", q1, q2, r, b1, b2)
    s = P.pair_expectations("sigmoid", 4 * q1, 4 * q2, 4 * r, 2 * b1, 2 * b2)
    su = 2 * P.pair_expectations("sigmoid", 4 * q1, 0.0, 0.0, 2 * b1, 0.0).K  # E s(2u) (times s(0) = 1/2)
    sv = 2 * P.pair_expectations("sigmoid", 4 * q2, 0.0, 0.0, 2 * b2, 0.0).K
    np.testing.assert_allclose(t.K, 4 * s.K - 2 * su - 2 * sv + 1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t.Kr, 16 * s.Kr, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t.K1, 16 * s.K1 - 16 * P.pair_expectations(
        "sigmoid", 4 * q1, 0.0, 0.0, 2 * b1, 0.0).K1, rtol=1e-11, atol=1e-13)


def test_softplus_derivative_kernel_is_the_sigmoid_kernel(rng):
    """softplus' = s (the logistic): E[softplus'(u) softplus'(v)] = E[s(u)s(v)], two different integrands."""
    q1, q2, r, b1, b2 = _rand_pairs(rng, 40)
    sp = P.pair_expectations("softplus", q1, q2, r, b1, b2)
    sg = P.pair_expectations("sigmoid", q1, q2, r, b1, b2)
    np.testing.assert_allclose(sp.Kr, sg.K, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["erf", "tanh", "sigmoid", "softplus"])
def test_smooth_kernels_are_symmetric_and_erf_matches_williams(rng, activation):
    """Swapping the two neurons swaps K1/K2 and Kb1/Kb2 (the meshes differ); erf at zero bias against the
    closed form, over random variances up to 25 and angles up to +-1."""
    q1, q2, r, b1, b2 = _rand_pairs(rng, 30)
    e = P.pair_expectations(activation, q1, q2, r, b1, b2)
    f = P.pair_expectations(activation, q2, q1, r, b2, b1)
    for a_, b_ in ((e.K, f.K), (e.K1, f.K2), (e.Kr, f.Kr), (e.Kb1, f.Kb2)):
        np.testing.assert_allclose(a_, b_, rtol=1e-12, atol=1e-14 * np.abs(e.K).max())
    if activation == "erf":
        quad = P.pair_expectations("erf", q1, q2, r, method="quadrature")
        closed = P.pair_expectations("erf", q1, q2, r, method="closed")
        for a_, b_ in zip(quad[:4], closed[:4]):
            np.testing.assert_allclose(a_, b_, rtol=1e-12, atol=1e-14)


def test_quad_points_beyond_the_hermite_limit_are_refused():
    """Issue 16: from 371 nodes numpy's Gauss-Hermite weights overflow (all 0 or NaN) and every kernel came back
    as exactly 0.0. 370 still works; 371 to 400 are refused with a one-line ConfigError."""
    with np.errstate(all="ignore"):
        w = np.polynomial.hermite_e.hermegauss(371)[1]
    assert not (np.all(np.isfinite(w)) and w.sum() > 0)  # the independent fact the limit rests on
    assert P.MAX_QUAD_POINTS == 370
    e = P.pair_expectations("tanh", 1.0, 1.0, 0.3, 0.2, 0.1, quad_points=370)
    ref_ = P.pair_expectations("tanh", 1.0, 1.0, 0.3, 0.2, 0.1)
    assert abs(e.K - ref_.K) < 1e-10 * abs(ref_.K)
    for n in (371, 385, 400):
        with pytest.raises(ConfigError, match="quad_points") as err:
            P.pair_expectations("erf", 1.0, 1.0, 0.3, 0.2, 0.1, quad_points=n)
        assert "\n" not in str(err.value) and "370" in str(err.value)
    with pytest.raises(ConfigError, match="quad_points"):
        P.population_risk(np.zeros((2, 3)), np.ones((1, 3)), Model(d=2, m=2, activation="tanh"), quad_points=371)


def test_gauss_hermite_rule_is_computed_once_and_returned_as_copies():
    """The rule is cached per size (the population-risk observer asked for it at every snapshot, 70 ms each):
    the values are those of a fresh ``hermegauss`` normalised to N(0, 1), and a caller modifying its copy does
    not change what the next caller gets."""
    x, w = P._nodes(None)
    rx, rw = np.polynomial.hermite_e.hermegauss(P.QUAD_POINTS)
    rw = rw / np.sqrt(2 * np.pi)
    keep = rw > 1e-18
    np.testing.assert_array_equal(x, rx[keep])
    np.testing.assert_allclose(w, rw[keep] / rw[keep].sum(), rtol=1e-15, atol=0)
    assert abs(w.sum() - 1) < 1e-14 and abs(w @ x**2 - 1) < 1e-12  # E x^2 = 1
    x[:] = 0.0
    w[:] = 0.0
    x2, w2 = P._nodes(P.QUAD_POINTS)
    np.testing.assert_array_equal(x2, rx[keep])
    assert w2.sum() > 0.99 and x2.flags.writeable
    before = P._gauss_hermite.cache_info().hits
    P._nodes(None)
    assert P._gauss_hermite.cache_info().hits == before + 1
