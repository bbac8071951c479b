"""Tests of meanfield.transport against closed forms and independent references."""

import subprocess
import sys

import numpy as np
import pytest

from meanfield import transport as T
from meanfield.errors import ConfigError


def _rng(seed=0):
    return np.random.default_rng(seed)


def _w2_1d_quantile(x, y, a=None, b=None):
    """W2 on the line from the quantile functions: int_0^1 (F^-1(t) - G^-1(t))^2 dt, by merged breakpoints."""
    a = np.full(len(x), 1 / len(x)) if a is None else np.asarray(a)
    b = np.full(len(y), 1 / len(y)) if b is None else np.asarray(b)
    ix, iy = np.argsort(x), np.argsort(y)
    xs, ys, ca, cb = x[ix], y[iy], np.cumsum(a[ix]), np.cumsum(b[iy])
    ts = np.unique(np.concatenate([[0.0], ca, cb]))
    ts = ts[ts <= 1.0]
    total = 0.0
    for lo, hi in zip(ts[:-1], ts[1:]):
        mid = 0.5 * (lo + hi)
        qx = xs[min(np.searchsorted(ca, mid), len(xs) - 1)]
        qy = ys[min(np.searchsorted(cb, mid), len(ys) - 1)]
        total += (hi - lo) * (qx - qy) ** 2
    return np.sqrt(total)


def _bures(m1, s1, m2, s2):
    vals, vecs = np.linalg.eigh(s1)
    r = (vecs * np.sqrt(vals)) @ vecs.T
    v2, e2 = np.linalg.eigh(r @ s2 @ r)
    cross = np.sum(np.sqrt(np.clip(v2, 0, None)))
    return np.sqrt(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross)


# ------------------------------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("solver", ["assignment", "emd", "lazy"])
def test_translated_cloud_gives_norm_of_shift(solver):
    x = _rng(1).standard_normal((150, 17))
    shift = np.linspace(-1.0, 2.0, 17)
    r = T.exact(x + shift, x, solver=solver)
    assert r.method == "exact" and r.converged and r.params["solver"] == solver
    np.testing.assert_allclose(r.value, np.linalg.norm(shift), rtol=1e-13)


@pytest.mark.parametrize("solver", ["assignment", "emd", "lazy"])
def test_permuted_cloud_gives_zero(solver):
    x = _rng(2).standard_normal((120, 17)) * 3.0
    r = T.exact(x, x[_rng(3).permutation(120)], solver=solver)
    assert r.value == 0.0


def test_one_dimensional_equal_sizes_against_sorted_closed_form():
    rng = _rng(4)
    x, y = rng.standard_normal(257), rng.exponential(size=257)
    want = np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    for solver in ["assignment", "emd", "lazy"]:
        np.testing.assert_allclose(T.exact(x, y, solver=solver).value, want, rtol=1e-12)


def test_one_dimensional_weighted_different_sizes_against_quantile_integral():
    rng = _rng(5)
    x, y = rng.standard_normal(40), 0.5 + rng.standard_normal(73) * 2
    a, b = rng.random(40), rng.random(73)
    a, b = a / a.sum(), b / b.sum()
    want = _w2_1d_quantile(x, y, a, b)
    got = T.w2(x, y, weights_mu=a, weights_nu=b)
    assert got.method == "exact" and got.params["solver"] == "emd"
    np.testing.assert_allclose(got.value, want, rtol=1e-10)
    np.testing.assert_allclose(T.exact(x, y, weights_mu=a, weights_nu=b, solver="lazy").value, want, rtol=1e-10)


def test_weights_equal_duplicated_points():
    # a teacher with |a| = (2, 1, 1) is the uniform measure on (t0, t0, t1, t2)
    rng = _rng(6)
    teacher, run = rng.standard_normal((3, 5)), rng.standard_normal((50, 5))
    w = np.array([2.0, 1.0, 1.0]) / 4
    weighted = T.w2(run, teacher, weights_nu=w).value
    duplicated = T.exact(run, teacher[[0, 0, 1, 2]], solver="emd").value
    np.testing.assert_allclose(weighted, duplicated, rtol=1e-12)


def test_gaussian_samples_approach_bures_wasserstein():
    m1, m2 = np.array([0.0, 0.0]), np.array([1.0, -0.5])
    s1 = np.array([[1.0, 0.3], [0.3, 0.5]])
    s2 = np.array([[0.4, -0.1], [-0.1, 1.5]])
    want = _bures(m1, s1, m2, s2)
    errors = []
    for m in [30, 150, 700]:
        errs = []
        for seed in range(2):
            rng = _rng(100 + seed)
            x = rng.multivariate_normal(m1, s1, size=m)
            y = rng.multivariate_normal(m2, s2, size=m)
            errs.append(abs(T.exact(x, y).value - want))
        errors.append(np.mean(errs))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * want


def test_gelbrich_is_exact_for_gaussians_and_a_lower_bound():
    rng = _rng(7)
    x, y = rng.standard_normal((200, 4)), rng.exponential(size=(200, 4))
    assert T.gelbrich_bound(x, y) <= T.exact(x, y).value
    # population Gaussians: moment-matched clouds give the closed form exactly
    np.testing.assert_allclose(T.gelbrich_bound(x, x * 2 + 1), _bures(
        x.mean(0), np.cov(x.T, bias=True), 2 * x.mean(0) + 1, 4 * np.cov(x.T, bias=True)), rtol=1e-10)


# ------------------------------------------------------------------------------------------------ bounds


def test_exact_below_identity_bound_with_equality_for_small_moves():
    rng = _rng(8)
    x0 = rng.standard_normal((300, 17))
    x1 = 0.5 * x0 + rng.standard_normal((300, 17))
    assert T.exact(x1, x0).value < 0.9 * T.identity_bound(x1, x0)
    # grid with spacing 1 and moves below 1/4 of it: the identity coupling is optimal
    g = np.stack(np.meshgrid(*[np.arange(5.0)] * 3), -1).reshape(-1, 3)
    moved = g + rng.uniform(-0.2, 0.2, size=g.shape) / np.sqrt(3)
    np.testing.assert_allclose(T.exact(moved, g).value, T.identity_bound(moved, g), rtol=1e-12)
    np.testing.assert_allclose(T.identity_bound(moved, g), np.sqrt(np.mean(np.sum((moved - g) ** 2, 1))), rtol=1e-14)


def test_relative_displacement():
    x0 = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert T.relative_displacement(x0 + np.array([[0.0, 1.0], [0.0, 0.0]]), x0) == pytest.approx(1 / 5, rel=1e-15)
    assert T.relative_displacement(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


# ------------------------------------------------------------------------------------------------ solvers agree


def test_emd_assignment_and_lazy_agree():
    rng = _rng(9)
    x, y = rng.standard_normal((400, 17)), rng.standard_normal((400, 17)) * 1.3
    values = [T.exact(x, y, solver=s).value for s in ["assignment", "emd", "lazy"]]
    np.testing.assert_allclose(values, values[0], rtol=0, atol=1e-10)


def test_sinkhorn_approaches_exact_as_reg_goes_to_zero():
    rng = _rng(10)
    x, y = rng.standard_normal((60, 2)), rng.standard_normal((60, 2)) * 0.5 + 1
    w = T.exact(x, y).value
    gaps, dgaps = [], []
    for reg in [0.3, 0.1, 0.03]:
        r = T.sinkhorn(x, y, reg=reg)
        d = T.sinkhorn_divergence(x, y, reg=reg)
        assert r.converged and r.params["reg_abs"] == pytest.approx(reg * np.median(np.sum((x[:, None] - y) ** 2, -1)))
        gaps.append(r.value - w)
        dgaps.append(abs(d.value - w))
    assert 0 < gaps[2] < gaps[1] < gaps[0]  # the entropic plan is feasible: its cost is above the optimum
    assert gaps[2] < 0.02 * w
    assert dgaps[2] < dgaps[1] < dgaps[0] and dgaps[2] < 0.01 * w
    assert T.sinkhorn_divergence(x, x, reg=0.1).value < 1e-4


def test_sinkhorn_not_converged_raises():
    rng = _rng(11)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    with pytest.raises(T.NotConvergedError, match="max_iter = 3"):
        T.sinkhorn(x, y, reg=0.01, max_iter=3)


def test_emd_iteration_cap_raises_instead_of_wrong_value():
    rng = _rng(12)
    x, y = rng.standard_normal((200, 17)), rng.standard_normal((200, 17))
    with pytest.raises(T.NotConvergedError, match="iteration cap"):
        T.exact(x, y, solver="emd", max_iter=50)


def test_auto_falls_back_and_records_it(monkeypatch):
    rng = _rng(13)
    x, y = rng.standard_normal((80, 3)), rng.standard_normal((60, 3))
    want = T.exact(x, y, solver="emd").value
    monkeypatch.setattr(T, "_emd_cap", lambda m, n: 5 if m * n > 4000 else 10**6)  # full problem fails
    monkeypatch.setattr(T, "AUTO_EXACT_MAX_M", 100)  # subsample of 50: 50 x 50 = 2500 entries
    r = T.w2(x, y, weights_nu=np.full(60, 1 / 60))
    assert r.method == "bracket" and r.params["fallback_from"] == "exact" and r.params["size"] == 50
    assert "iteration cap" in r.params["fallback_reason"]
    assert r.lower <= want <= r.upper and abs(r.value - want) <= r.stderr


def test_sliced_translation_closed_form_and_below_exact():
    rng = _rng(14)
    x = rng.standard_normal((300, 6))
    v = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    r = T.sliced(x + v, x, n_projections=400, seed=3)
    # E_omega (omega . v)^2 = |v|^2 / p for omega uniform on the sphere
    assert abs(r.value - np.linalg.norm(v) / np.sqrt(6)) < 3 * r.stderr
    assert r.value < T.exact(x + v, x).value
    assert T.sliced(x + v, x, n_projections=400, seed=3) == r  # seeded
    y1 = rng.standard_normal(100)
    np.testing.assert_allclose(T.sliced(y1, y1**2, n_projections=5).value, T.exact(y1, y1**2).value, rtol=1e-12)


def test_subsampled_within_three_stderr_of_exact_for_paired_particles():
    rng = _rng(15)
    x0 = rng.standard_normal((1500, 17))
    x1 = x0 + 0.1 * rng.standard_normal((1500, 17))
    w = T.exact(x1, x0).value
    r = T.subsampled(x1, x0, size=150, n_subsets=20, seed=1)
    assert r.params["paired"] and r.stderr > 0
    assert abs(r.value - w) < 3 * r.stderr


def test_subsampled_is_an_upper_estimate_for_unpaired_clouds():
    rng = _rng(16)
    x, y = rng.standard_normal((800, 5)), rng.standard_normal((700, 5)) + 0.5
    w = T.exact(x, y).value
    r = T.subsampled(x, y, size=100, n_subsets=20, seed=2)
    assert not r.params["paired"]
    assert r.value > w + 3 * r.stderr  # the convexity bias, larger than the noise here


def test_w2_auto_uses_the_certified_bracket_above_threshold(monkeypatch):
    rng = _rng(17)
    x0 = rng.standard_normal((300, 4))
    monkeypatch.setattr(T, "AUTO_EXACT_MAX_M", 100)
    r = T.w2(x0 + 0.01, x0)
    assert r.method == "bracket" and r.params["size"] == 50
    assert r.lower <= 0.02 * (1 + 1e-12) and r.upper >= 0.02 * (1 - 1e-12)  # translation by 0.01 in R^4
    assert abs(r.value - 0.02) <= r.stderr * (1 + 1e-12) + 1e-15


def _clouds(case, m, p, seed):
    rng = _rng(seed)
    x0 = rng.standard_normal((m, p))
    if case == "indep":
        return rng.standard_normal((m, p)), x0
    return x0 + 0.1 * rng.standard_normal((m, p)), x0


@pytest.mark.parametrize("p", [3, 17])
@pytest.mark.parametrize("case", ["indep", "moved"])
def test_bracket_contains_exact_value(case, p):
    """Coverage of the certified bracket where exact W2 is affordable: lower <= exact <= upper, every time."""
    for seed in range(3):
        x, x0 = _clouds(case, 400, p, seed)
        want = T.exact(x, x0).value
        r = T.bracket(x, x0, size=150, seed=seed)
        assert r.lower <= want * (1 + 1e-13) and want <= r.upper * (1 + 1e-13), (seed, r.lower, want, r.upper)
        assert r.value == pytest.approx(0.5 * (r.lower + r.upper)) and r.stderr == pytest.approx(0.5 * (r.upper - r.lower))
    if case == "moved" and p == 17:  # theta_t against theta_0: the bracket is tight
        assert (r.upper - r.lower) < 1e-6 * want


def test_bracket_weighted_unequal_sizes_contains_exact():
    rng = _rng(30)
    x, y = rng.standard_normal((120, 5)), 0.3 + 1.2 * rng.standard_normal((90, 5))
    a, b = rng.random(120), rng.random(90)
    a, b = a / a.sum(), b / b.sum()
    want = T.exact(x, y, weights_mu=a, weights_nu=b).value
    r = T.bracket(x, y, weights_mu=a, weights_nu=b, size=40)
    assert r.lower <= want <= r.upper and r.params["upper_bound"].startswith("monotone")


def test_auto_is_exact_at_m_4000():
    """Issue 16: auto returned a subsampled estimate 10-22 % off at m = 4000; exact fits the budget there."""
    assert T.AUTO_EXACT_MAX_M >= 4000
    x, x0 = _clouds("moved", 4000, 17, 0)
    r = T.w2(x, x0)
    assert r.method == "exact" and r.lower == r.value == r.upper and r.stderr == 0.0


def test_sinkhorn_default_converges_on_1001_independent_points_in_r17():
    """Issue 16: POT's stabilised solver lost the plan's mass and ran to max_iter here; the default now uses the
    log-domain solver, which converges in tens of iterations."""
    x, y = _clouds("indep", 1001, 17, 5)
    r = T.sinkhorn(x, y)
    assert r.params["log_domain"] and r.params["niter"] < 1000 and r.params["err"] < 1e-9
    assert r.value >= T.exact(x, y).value  # the cost of a feasible plan is above the optimum


# ------------------------------------------------------------------------------------------------ observer


def test_observer_records_exact_bound_and_displacement():
    rng = _rng(18)
    x0 = rng.standard_normal((200, 17))
    obs = T.W2ToInit(x0)
    x1 = x0 + 0.5 * rng.standard_normal(x0.shape)
    out = obs(x1)
    assert obs.method == "exact" and out.method == "exact"
    assert out.value == pytest.approx(T.exact(x1, x0).value, rel=1e-14)
    bound = T.identity_bound(x1, x0)
    assert bound == pytest.approx(np.sqrt(np.mean(np.sum((x1 - x0) ** 2, axis=1))), rel=1e-14)
    assert T.relative_displacement(x1, x0) == pytest.approx(np.linalg.norm(x1 - x0) / np.linalg.norm(x0), rel=1e-14)
    assert out.value <= bound * (1 + 4e-16)  # equal here up to summation order
    assert obs(x0).value == 0.0
    x0[0, 0] = 99.0  # the observer keeps its own copy
    assert obs(x1).value == out.value


def test_observer_subsampled_above_threshold(monkeypatch):
    rng = _rng(19)
    x0 = rng.standard_normal((400, 17))
    monkeypatch.setattr(T, "OBSERVER_EXACT_MAX_M", 100)
    monkeypatch.setattr(T, "OBSERVER_SUBSET_SIZE", 50)
    obs = T.W2ToInit(x0)
    x1 = x0 + 0.05 * rng.standard_normal(x0.shape)
    out = obs(x1)
    assert out.method == "subsampled" and out.params["paired"]
    # small moves: identity coupling is optimal on every subset, so E value^2 = identity_bound^2
    assert abs(out.value - T.identity_bound(x1, x0)) < 3 * out.stderr + 1e-12
    assert obs(x1).value == out.value and obs(x1).stderr == out.stderr  # same subsets at every call


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(nu=np.zeros((5, 3))), "nu"),
        (dict(mu=np.array([[np.nan, 0.0]] * 4)), "mu"),
        (dict(weights_mu=np.array([0.5, 0.6, -0.1, 0.0])), "weights_mu"),
        (dict(weights_mu=np.array([0.5, 0.5, 0.5, 0.5])), "weights_mu"),
        (dict(weights_nu=np.array([0.5, 0.5])), "weights_nu"),
        (dict(weights_nu=np.array([np.nan, 0.5, 0.5])), "weights_nu"),
        (dict(method="wasserstein"), "method"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, key):
    args = dict(mu=np.zeros((4, 2)), nu=np.ones((3, 2)))
    args.update(kwargs)
    with pytest.raises(ConfigError) as err:
        T.w2(args.pop("mu"), args.pop("nu"), **args)
    assert err.value.key == key


def test_bad_parameters():
    x = np.zeros((4, 2))
    with pytest.raises(ConfigError, match="reg"):
        T.sinkhorn(x, x + 1, reg=-1.0)
    with pytest.raises(ConfigError, match="assignment"):
        T.exact(x, np.zeros((3, 2)), solver="assignment")
    with pytest.raises(ConfigError, match="paired"):
        T.subsampled(x, np.zeros((3, 2)), paired=True)
    with pytest.raises(ConfigError, match="theta"):
        T.W2ToInit(x)(np.zeros((5, 2)))


def test_import_meanfield_does_not_import_pot():
    code = "import sys, meanfield, meanfield.transport; assert 'ot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
