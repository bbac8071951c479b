"""W2 between particle measures along the core engine's flows: the lazy/rich width laws."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.data import teacher_student
from meanfield.observers import observer
from meanfield.run import simulate
from meanfield.transport import W2ToInit, identity_bound, w2


@pytest.fixture(scope="module")
def w2_at_T():
    data = teacher_student(d=4, n_train=20, k=2, activation="relu", seed=0)
    widths = np.array([2**6, 2**8, 2**10, 2**12])
    out = {}
    for scaling in ("ntk", "mean_field"):
        vals = []
        for m in widths:
            model = mf.Model(d=4, m=int(m), activation="relu", scaling=scaling)
            flow = mf.particle_flow(data, model, mf.Dynamics(lr=1.0, dt=0.1, integrator="rk4"))
            theta0 = mf.init_particles(model, 0)
            theta_T = flow.advance(flow.init(theta0), 50).theta  # T = 5
            res = w2(theta_T, theta0, method="exact")
            assert res.method == "exact" and res.converged
            vals.append(res.value)
        out[scaling] = np.array(vals)
    return widths, out


def test_w2_to_init_shrinks_like_inverse_sqrt_width_under_ntk_scaling(w2_at_T):
    widths, vals = w2_at_T
    slope = np.polyfit(np.log(widths), np.log(vals["ntk"]), 1)[0]
    assert -0.65 <= slope <= -0.35, vals["ntk"]


def test_w2_to_init_stays_order_one_under_mean_field_scaling(w2_at_T):
    widths, vals = w2_at_T
    slope = np.polyfit(np.log(widths), np.log(vals["mean_field"]), 1)[0]
    assert -0.15 <= slope <= 0.15, vals["mean_field"]
    assert np.all(vals["mean_field"] > 10 * vals["ntk"][-1])


def test_w2_observer_records_along_a_run():
    data = teacher_student(d=3, n_train=16, k=2, seed=1)
    model = mf.Model(d=3, m=40, activation="tanh")
    flow = mf.particle_flow(data, model, mf.Dynamics(dt=0.2))
    theta0 = mf.init_particles(model, 3)
    obs = W2ToInit(theta0)
    res = simulate(flow, theta0, n_steps=40, snapshot_every=10,
                   observers=[observer("w2_to_init", lambda s: obs(s.theta).value),
                              observer("identity_bound", lambda s: identity_bound(s.theta, theta0))])
    w, bound = res.observables["w2_to_init"], res.observables["identity_bound"]
    assert w[0] == 0.0 and np.all(w[1:] > 0) and np.all(w <= bound + 1e-12)
    for k in range(len(w)):  # each recorded value is the exact W2 of that snapshot
        assert w[k] == pytest.approx(w2(res.theta[k], theta0, method="exact").value, rel=1e-12, abs=1e-15)
