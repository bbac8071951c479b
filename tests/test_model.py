"""Tests of meanfield.model: outputs and risk against the slow NumPy reference (tests/reference.py) on random
shapes, the initial distribution against its law, symmetric initialisation against f_0 = 0 exactly, float32
against float64, and one test per bad input checking the error type and the parameter named."""

import math

import numpy as np
import pytest

import meanfield as mf
import reference as ref

SCALINGS = {
    "mean_field": dict(scaling="mean_field"),
    "ntk": dict(scaling="ntk"),
    "lazy": dict(scaling="lazy", lazy_scale=3.0),
    "explicit": dict(scaling=mf.get_scaling("explicit", alpha=0.7, beta=0.3, c=2.0)),
}

# (n, m, d): single point, single neuron, odd sizes.
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 2), (13, 9, 4), (31, 17, 5), (8, 64, 1)]


def _problem(rng, n, m, d, bias, **model_kw):
    model = mf.Model(d=d, m=m, bias=bias, sigma_b=0.5, **model_kw)
    theta = mf.init_particles(model, rng)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    return model, theta, X, y


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
@pytest.mark.parametrize("bias", [False, True])
def test_outputs_and_risk_match_reference(rng, shape, activation, bias):
    n, m, d = shape
    model, theta, X, y = _problem(rng, n, m, d, bias, activation=activation)
    f = mf.outputs(theta, X, model)
    assert f.shape == (n,) and f.dtype == np.float64
    want = ref.outputs(theta, X, activation, bias, 1.0, 1.0)
    assert ref.rel_err(f, want) < 1e-12
    R = mf.risk(theta, X, y, model)
    assert isinstance(R, float)
    assert R == pytest.approx(ref.risk(theta, X, y, activation, bias), rel=1e-12)


@pytest.mark.parametrize("preset", sorted(SCALINGS))
def test_outputs_scaling_presets(rng, preset):
    model, theta, X, _ = _problem(rng, 11, 13, 3, True, activation="tanh", **SCALINGS[preset])
    sc = model.scale
    expected = {"mean_field": (1.0, 1.0, 1.0), "ntk": (0.5, 0.0, 1.0), "lazy": (1.0, 1.0, 3.0),
                "explicit": (0.7, 0.3, 2.0)}[preset]
    assert (sc.alpha, sc.beta, sc.c) == expected
    want = ref.outputs(theta, X, "tanh", True, sc.alpha, sc.c)
    assert ref.rel_err(mf.outputs(theta, X, model), want) < 1e-12


def test_outputs_accept_1d_inputs_when_d_is_1(rng):
    model = mf.Model(d=1, m=5, activation="erf")
    theta = mf.init_particles(model, rng)
    x = rng.standard_normal(7)
    np.testing.assert_array_equal(mf.outputs(theta, x, model), mf.outputs(theta, x[:, None], model))


def test_init_particles_law_and_layout(rng):
    """Columns [a, w_1..w_d, b] have the stated normal laws (means and variances within 5 standard errors)."""
    m, d = 20000, 3
    model = mf.Model(d=d, m=m, bias=True, sigma_a=0.5, sigma_w=2.0, sigma_b=0.3)
    theta = mf.init_particles(model, rng)
    assert theta.shape == (m, d + 2) and theta.dtype == np.float64 and model.p == d + 2
    sds = np.array([0.5, 2.0, 2.0, 2.0, 0.3])
    mean, var = theta.mean(axis=0), theta.var(axis=0)
    assert np.all(np.abs(mean) < 5 * sds / math.sqrt(m))
    assert np.all(np.abs(var / sds**2 - 1) < 5 * math.sqrt(2.0 / m))
    # no bias column by default, and sigma_b = 0 by default
    assert mf.init_particles(mf.Model(d=d, m=4), rng).shape == (4, d + 1)
    assert np.all(mf.init_particles(mf.Model(d=d, m=4, bias=True), rng)[:, -1] == 0.0)


def test_init_particles_seed_is_reproducible():
    model = mf.Model(d=2, m=6)
    a = mf.init_particles(model, 7)
    b = mf.init_particles(model, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, mf.init_particles(model, 8))


@pytest.mark.parametrize("activation", ["relu", "tanh", "quadratic", "softplus"])
@pytest.mark.parametrize("bias", [False, True])
def test_symmetric_init_gives_zero_output_exactly(rng, activation, bias):
    model = mf.Model(d=4, m=10, activation=activation, bias=bias, sigma_b=1.0, symmetric=True)
    theta = mf.init_particles(model, rng)
    np.testing.assert_array_equal(theta[0::2, 1:], theta[1::2, 1:])
    np.testing.assert_array_equal(theta[0::2, 0], -theta[1::2, 0])
    assert np.all(theta[:, 0] != 0.0)
    f0 = mf.outputs(theta, rng.standard_normal((9, 4)), model)
    assert np.all(f0 == 0.0)


def test_symmetric_init_needs_even_m():
    with pytest.raises(mf.ConfigError, match=r"model\.m") as exc:
        mf.Model(d=2, m=5, symmetric=True)
    assert "even" in str(exc.value)


def test_float32_outputs_agree_with_float64(rng):
    m64 = mf.Model(d=5, m=50, activation="tanh", bias=True, sigma_b=0.5)
    m32 = mf.Model(d=5, m=50, activation="tanh", bias=True, sigma_b=0.5, dtype="float32")
    theta = mf.init_particles(m64, rng)
    X = rng.standard_normal((40, 5))
    assert mf.init_particles(m32, 0).dtype == np.float32
    f32 = mf.outputs(theta.astype(np.float32), X.astype(np.float32), m32)
    assert f32.dtype == np.float32
    f64 = mf.outputs(theta.astype(np.float32).astype(np.float64), X.astype(np.float32).astype(np.float64), m64)
    err = ref.rel_err(f32, f64)
    assert err < 1e-5
    assert err > 0  # it really computed in single precision


def test_model_describe_is_json_ready():
    import json

    desc = mf.Model(d=3, m=8, activation="erf", scaling="lazy", lazy_scale=2.0).describe()
    assert json.loads(json.dumps(desc)) == desc
    assert (desc["alpha"], desc["beta"], desc["c"], desc["p"]) == (1.0, 1.0, 2.0, 4)


# ---------------------------------------------------------------------------------------------------------
# bad inputs: ConfigError naming the parameter


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(d=2, m=0), "model.m"),
        (dict(d=2, m=-3), "model.m"),
        (dict(d=2, m=2.5), "model.m"),
        (dict(d=0, m=4), "model.d"),
        (dict(d=2, m=4, activation="swish"), "model.activation"),
        (dict(d=2, m=4, scaling="muP"), "model.scaling"),
        (dict(d=2, m=4, scaling="lazy", lazy_scale=-1.0), "model.lazy_scale"),
        (dict(d=2, m=4, scaling="mean_field", lazy_scale=2.0), "model.lazy_scale"),
        (dict(d=2, m=4, sigma_a=-1.0), "model.sigma_a"),
        (dict(d=2, m=4, sigma_w=float("nan")), "model.sigma_w"),
        (dict(d=2, m=4, dtype="float16"), "model.dtype"),
        (dict(d=2, m=4, bias=1), "model.bias"),
    ],
)
def test_bad_model_raises_config_error(kwargs, key):
    with pytest.raises(mf.ConfigError) as exc:
        mf.Model(**kwargs)
    assert exc.value.key == key
    assert str(exc.value).startswith(key + " = ")


def test_bad_explicit_scaling_raises():
    with pytest.raises(mf.ConfigError, match="scaling"):
        mf.get_scaling("explicit", alpha=1.0)
    with pytest.raises(mf.ConfigError, match=r"^c = "):
        mf.get_scaling("explicit", alpha=1.0, beta=1.0, c=0.0)


def test_bad_arrays_raise_config_error(rng):
    model = mf.Model(d=3, m=4)
    theta = mf.init_particles(model, rng)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal(6)
    cases = [
        (lambda: mf.outputs(theta[:, :3], X, model), "theta"),
        (lambda: mf.outputs(theta[:3], X, model), "theta"),
        (lambda: mf.outputs(theta[0], X, model), "theta"),
        (lambda: mf.outputs(np.where(theta > 0, np.nan, theta), X, model), "theta"),
        (lambda: mf.outputs(theta, X[:, :2], model), "X"),
        (lambda: mf.outputs(theta, X[0], model), "X"),
        (lambda: mf.outputs(theta, X[:0], model), "X"),
        (lambda: mf.outputs(theta, np.where(X > 1, np.inf, X), model), "X"),
        (lambda: mf.risk(theta, X, y[:5], model), "y"),
        (lambda: mf.init_particles(model, -1), "seed"),
    ]
    for call, key in cases:
        with pytest.raises(mf.ConfigError) as exc:
            call()
        assert exc.value.key == key, (key, str(exc.value))
        assert str(exc.value).startswith(key + " = ")
