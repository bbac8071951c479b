"""The parameter-space linearised flow against finite differences, the particle flow at theta0, the exact
function-space solution, and the lazy-regime width law."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.data import teacher_student
from meanfield.linearized import function_space, linearized_flow, linearized_outputs
from reference import central_difference, rel_err


@pytest.fixture(scope="module")
def data():
    return teacher_student(d=4, n_train=20, n_test=30, k=2, activation="tanh", seed=0)


def lin_risk(theta, theta0, X, y, model):
    return 0.5 * np.mean((linearized_outputs(theta, theta0, X, model) - y) ** 2)


@pytest.mark.parametrize("scaling, bias", [("ntk", True), ("mean_field", False), ("lazy", True)])
def test_velocity_is_minus_the_scaled_gradient_of_the_linearised_risk(data, scaling, bias, rng):
    model = mf.Model(d=4, m=7, activation="tanh", scaling=scaling, bias=bias, sigma_b=0.5,
                     lazy_scale=2.0 if scaling == "lazy" else None)
    dyn = mf.Dynamics(lr=0.7, dt=1e-3, layer_lr=(1.0, 2.0, 0.5), weight_decay=0.1)
    theta0 = mf.init_particles(model, rng)
    theta = theta0 + 0.3 * rng.standard_normal(theta0.shape)  # away from the linearisation point
    flow = linearized_flow(data, model, dyn, theta0)
    v = (flow.advance(flow.init(theta), 1).theta - theta) / dyn.dt  # one Euler step = dt * velocity
    grad = central_difference(lambda th: lin_risk(th, theta0, data.X, data.y, model), theta, 1e-6)
    D = np.full(model.p, 2.0)
    D[0] = 1.0
    if bias:
        D[-1] = 0.5
    sc = model.scale
    expected = -0.7 * model.m ** sc.beta / sc.c**2 * D * grad - 0.1 * theta
    assert rel_err(v, expected) < 1e-6


def test_linearised_and_particle_flows_agree_at_theta0(data):
    model = mf.Model(d=4, m=9, activation="relu", scaling="ntk", bias=True, sigma_b=1.0)
    dyn = mf.Dynamics(dt=0.05)
    theta0 = mf.init_particles(model, 1)
    np.testing.assert_array_equal(linearized_outputs(theta0, theta0, data.X_test, model),
                                  mf.outputs(theta0, data.X_test, model))
    lin = linearized_flow(data, model, dyn, theta0)
    full = mf.particle_flow(data, model, dyn)
    np.testing.assert_allclose(lin.advance(lin.init(theta0), 1).theta, full.advance(full.init(theta0), 1).theta,
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("scaling", ["ntk", "mean_field"])
def test_parameter_space_equals_function_space_solution(data, scaling):
    model = mf.Model(d=4, m=40, activation="tanh", scaling=scaling)
    dyn = mf.Dynamics(lr=1.0, dt=0.02, integrator="rk4")
    theta0 = mf.init_particles(model, 2)
    flow = linearized_flow(data, model, dyn, theta0)
    state = flow.advance(flow.init(theta0), 100)  # t = 2
    kw = dict(activation="tanh", scaling=scaling, lr=1.0)
    predict = function_space(mf.empirical_ntk(theta0, data.X, **kw), data.y, mf.outputs(theta0, data.X, model))
    pred = predict(state.t, mf.empirical_ntk(theta0, data.X_test, data.X, **kw), mf.outputs(theta0, data.X_test, model))
    np.testing.assert_allclose(linearized_outputs(state.theta, theta0, data.X, model), pred.train, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(linearized_outputs(state.theta, theta0, data.X_test, model), pred.test, rtol=1e-8,
                               atol=1e-10)


def max_gap(data, m, scaling, seed):
    """max over snapshots t <= 10 of max_x |f_t(x) - f_t^lin(x)| on the test points."""
    model = mf.Model(d=4, m=m, activation="relu", scaling=scaling)
    dyn = mf.Dynamics(lr=1.0, dt=0.1, integrator="rk4")
    theta0 = mf.init_particles(model, seed)
    full, lin = mf.particle_flow(data, model, dyn), linearized_flow(data, model, dyn, theta0)
    s, s_lin = full.init(theta0), lin.init(theta0)
    gap = 0.0
    for _ in range(10):
        s, s_lin = full.advance(s, 10), lin.advance(s_lin, 10)
        f = mf.outputs(s.theta, data.X_test, model)
        gap = max(gap, np.max(np.abs(f - linearized_outputs(s_lin.theta, theta0, data.X_test, model))))
    return gap


def test_lazy_gap_shrinks_like_inverse_sqrt_width_and_mean_field_does_not(data):
    widths = np.array([2**6, 2**8, 2**10, 2**12])
    gaps = {s: np.array([np.mean([max_gap(data, m, s, seed) for seed in range(4)]) for m in widths])
            for s in ("ntk", "mean_field")}
    slope_ntk = np.polyfit(np.log(widths), np.log(gaps["ntk"]), 1)[0]
    slope_mf = np.polyfit(np.log(widths), np.log(gaps["mean_field"]), 1)[0]
    assert -0.65 <= slope_ntk <= -0.35, gaps
    assert -0.15 <= slope_mf <= 0.15, gaps
    assert np.all(gaps["mean_field"] > 0.1) and gaps["ntk"][-1] < 0.1 * gaps["mean_field"][-1]


def test_model_ntk_gives_the_output_velocity_of_the_flow_built_from_the_same_objects(data):
    """df/dt = -(1/n) Theta (f - y) at t = 0, with the output velocity from a tiny Euler step of the flow."""
    from meanfield.ntk import model_ntk

    model = mf.Model(d=4, m=30, activation="erf", scaling="lazy", lazy_scale=3.0, bias=True, sigma_b=0.7)
    dyn = mf.Dynamics(lr=0.8, dt=1e-6, layer_lr=(2.0, 0.5, 1.5))
    theta0 = mf.init_particles(model, 5)
    flow = mf.particle_flow(data, model, dyn)
    f0 = mf.outputs(theta0, data.X_test, model)
    f1 = mf.outputs(flow.advance(flow.init(theta0), 1).theta, data.X_test, model)
    r = mf.outputs(theta0, data.X, model) - data.y
    predicted = -model_ntk(theta0, data.X_test, data.X, model=model, dynamics=dyn) @ r / len(r)
    np.testing.assert_allclose((f1 - f0) / dyn.dt, predicted, rtol=1e-4, atol=1e-9)
