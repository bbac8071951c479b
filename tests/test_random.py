"""Tests of the counter-based generator (meanfield/_kernels/random.py): moments of the normals against N(0, 1)
within sampling error, draws as pure functions of (seed, stream, step, index), the SGD batch draw as a
uniform sample without replacement, and the Langevin noise of a flow step equal to the generator's draws."""

import math

import numpy as np
import pytest
from scipy import stats

import meanfield as mf
from meanfield._kernels import advance as adv
from meanfield._kernels import random as rnd

N = 1_000_000


@pytest.fixture(scope="module")
def draws():
    return rnd.normals(12345, rnd.NOISE, 7, N)


def test_normal_moments(draws):
    """Mean 0, variance 1, skewness 0, kurtosis 3, each within 4 standard errors of the estimate."""
    x = draws
    assert x.shape == (N,) and np.all(np.isfinite(x))
    mean = x.mean()
    c = x - mean
    var = np.mean(c**2)
    skew = np.mean(c**3) / var**1.5
    kurt = np.mean(c**4) / var**2
    assert abs(mean) < 4 / math.sqrt(N)
    assert abs(var - 1) < 4 * math.sqrt(2 / N)
    assert abs(skew) < 4 * math.sqrt(6 / N)
    assert abs(kurt - 3) < 4 * math.sqrt(24 / N)


def test_normal_distribution_and_tails(draws):
    """Kolmogorov-Smirnov against N(0, 1), and the fraction beyond 3 sigma against 2 Phi(-3)."""
    ks = stats.kstest(draws[:200_000], "norm")
    assert ks.pvalue > 1e-4
    p3 = 2 * stats.norm.sf(3.0)
    frac = np.mean(np.abs(draws) > 3.0)
    assert abs(frac - p3) < 4 * math.sqrt(p3 * (1 - p3) / N)


def test_neighbouring_keys_are_uncorrelated(draws):
    """Draws for neighbouring seeds, steps and streams, and lagged indices, have correlation O(N^-1/2)."""
    n = 200_000
    base = draws[:n]
    others = [
        rnd.normals(12346, rnd.NOISE, 7, n),  # next seed
        rnd.normals(12345, rnd.NOISE, 8, n),  # next step
        rnd.normals(12345, rnd.BATCH, 7, n),  # other stream
        draws[1 : n + 1],  # next index
    ]
    for other in others:
        assert abs(np.corrcoef(base, other)[0, 1]) < 4 / math.sqrt(n)
        assert not np.any(base == other)


def test_draws_are_pure_functions_of_the_keys():
    a = rnd.normals(3, rnd.NOISE, 11, 1000)
    np.testing.assert_array_equal(a, rnd.normals(3, rnd.NOISE, 11, 1000))  # same keys, same values
    np.testing.assert_array_equal(a[:17], rnd.normals(3, rnd.NOISE, 11, 17))  # value i depends on i only
    rnd.normals(99, rnd.BATCH, 0, 10)  # an unrelated call in between changes nothing (no hidden state)
    np.testing.assert_array_equal(a, rnd.normals(3, rnd.NOISE, 11, 1000))


def test_batch_draw_is_uniform_without_replacement():
    """The partial Fisher-Yates batch: B distinct indices, each point equally likely at each position,
    and the index permutation is restored afterwards."""
    n, nb, steps = 7, 3, 7000
    idx = np.arange(n)
    swaps = np.empty(nb, np.int64)
    counts = np.zeros((nb, n))
    for s in range(steps):
        adv._draw_batch(idx, swaps, nb, 5, s)
        batch = idx[:nb].copy()
        assert len(set(batch.tolist())) == nb
        counts[np.arange(nb), batch] += 1
        adv._undo_batch(idx, swaps, nb)
        np.testing.assert_array_equal(idx, np.arange(n))
    # chi-square of each position's counts against uniform over n points
    for row in counts:
        assert stats.chisquare(row).pvalue > 1e-4
    # pure function of (seed, step): redrawing step 123 gives the same batch
    adv._draw_batch(idx, swaps, nb, 5, 123)
    first = idx[:nb].copy()
    adv._undo_batch(idx, swaps, nb)
    adv._draw_batch(idx, swaps, nb, 5, 123)
    np.testing.assert_array_equal(first, idx[:nb])


def test_langevin_noise_is_the_counter_based_draw(rng):
    """With zero data gradient an Euler-Maruyama step is theta (1 - lambda h) + sqrt(2 tau h) xi with
    xi[j, q] = normal(seed, NOISE, step, j p + q)."""
    m, d = 6, 2
    model = mf.Model(d=d, m=m, activation="identity")
    X, y = np.zeros((3, d)), np.zeros(3)
    h, tau, lam, seed, step = 0.05, 0.3, 0.7, 2024, 41
    dyn = mf.Dynamics(dt=h, integrator="euler_maruyama", temperature=tau, weight_decay=lam, seed=seed)
    flow = mf.particle_flow((X, y), model, dyn)
    theta0 = mf.init_particles(model, rng)
    theta1 = flow.advance(flow.init(theta0, step=step), 1).theta
    xi = rnd.normals(seed, rnd.NOISE, step, m * model.p).reshape(m, model.p)
    want = theta0 + h * (-lam * theta0) + math.sqrt(2 * tau * h) * xi
    np.testing.assert_allclose(theta1, want, rtol=1e-14, atol=1e-15)
