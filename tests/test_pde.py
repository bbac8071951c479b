"""Tests of meanfield.pde, the finite-volume solver of the mean-field PDE, against independent things: exact
conservation, closed forms (heat equation, Ornstein-Uhlenbeck, in the plane and for the law of |w|), the
particle engine's velocities (meanfield.population closed forms, meanfield.flow on finite data), a direct
Cartesian quadrature of the radial potential, the scheme's order under refinement, propagation of chaos at
the m^-1/2 rate (risk, coupling distance, 1-D and marginal W2), the exact 1-D W2 to a piecewise-constant
density, and bitwise thread-count invariance (subprocesses)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import special

from meanfield import pde
from meanfield.data import teacher_outputs
from meanfield.errors import ConfigError
from meanfield.flow import Dynamics, velocities
from meanfield.model import Model, init_particles
from meanfield.population import population_velocities

TEACHER = np.array([[1.0, 1.5], [-0.5, -0.7]])


def _finite_problem(n=8, seed=0, activation="erf"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1))
    T = np.array([[1.0, 1.5]])
    return pde.plane_problem((X, teacher_outputs(T, X, activation)), teacher=T, activation=activation), X


def _slope(m, y):
    return float(np.polyfit(np.log(m), np.log(y), 1)[0])


# ------------------------------------------------------------------------------------------------------------
# conservation, positivity
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2])
def test_plane_mass_conserved_to_rounding_and_density_non_negative(order):
    prob, _ = _finite_problem()
    init = Model(d=1, m=1, sigma_a=0.8)
    grid = pde.make_grid(prob, 48, initial=init, margin=1.0, tolerance=1e-3)  # tight box: mass leaves
    flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=2.0, temperature=0.05, order=order), tolerance=0.1)
    s = flow.init(init)
    assert abs(s.density.sum() * grid.cell_volume + s.outflow - 1.0) < 1e-15
    out0 = s.outflow
    for _ in range(10):
        s = flow.advance(s, 8)
        assert s.density.min() >= 0.0
        assert abs(s.density.sum() * grid.cell_volume + s.outflow - 1.0) < 2e-14
    assert s.outflow > out0 + 1e-4  # mass did leave through the boundary, and was counted


def test_radial_mass_conserved_and_non_negative():
    prob = pde.radial_problem(3, [[1.0, 1.5]], radial_points=24, angular_points=8)
    init = Model(d=3, m=1, sigma_w=0.7)
    grid = pde.make_grid(prob, 200, initial=init, margin=1.0)
    flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=4.0, temperature=0.05), tolerance=0.1)
    s = flow.init(init)
    for _ in range(10):
        s = flow.advance(s, 40)
        assert s.density.min() >= 0.0
        assert abs(s.density.sum() * grid.cell_volume + s.outflow - 1.0) < 2e-14


def test_outflow_beyond_tolerance_raises_with_the_state():
    prob, _ = _finite_problem()
    init = Model(d=1, m=1)
    grid = pde.make_grid(prob, 32, initial=init, extent=2.0)
    flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=0.0, temperature=0.5), tolerance=1e-3)
    with pytest.raises(ConfigError, match="pde.extent") as err:
        flow.advance_to(flow.init(init), 2.0)
    assert err.value.state.outflow > 1e-3


# ------------------------------------------------------------------------------------------------------------
# closed forms: heat equation and Ornstein-Uhlenbeck
# ------------------------------------------------------------------------------------------------------------


def _plane_gaussian_cells(grid, var_a, var_w):
    ma = np.diff(special.ndtr(grid.faces(0) / math.sqrt(var_a)))
    mw = np.diff(special.ndtr(grid.faces(1) / math.sqrt(var_w)))
    return np.outer(ma, mw)


@pytest.mark.parametrize("lam", [0.0, 1.0], ids=["heat", "ou"])
def test_plane_heat_and_ou_against_closed_form(lam):
    """V = 0 (lr = 0), temperature tau, weight decay lam: each coordinate is an OU process,
    var(t) = s0^2 e^{-2 lam t} + tau/lam (1 - e^{-2 lam t}) (heat: s0^2 + 2 tau t). The L1 error of the cell
    masses falls like h^2 (second-order scheme)."""
    prob, _ = _finite_problem()
    tau, t_end = 0.3, 1.0
    init = Model(d=1, m=1, sigma_a=0.6, sigma_w=0.9)

    def var(s0):
        if lam == 0:
            return s0**2 + 2 * tau * t_end
        e = math.exp(-2 * lam * t_end)
        return s0**2 * e + tau / lam * (1 - e)

    errs = []
    for n in (32, 64, 128):
        grid = pde.make_grid(prob, n, initial=init, extent=8.0 if lam == 0 else 5.0)
        flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=0.0, weight_decay=lam, temperature=tau), tolerance=1e-5)
        s = flow.advance_to(flow.init(init), t_end)
        exact = _plane_gaussian_cells(grid, var(0.6), var(0.9))
        errs.append(np.abs(s.density * grid.cell_volume - exact).sum())
    order = math.log2(errs[0] / errs[1]), math.log2(errs[1] / errs[2])
    print(f"plane lam={lam}: L1 errors {errs}, orders {order}")
    assert errs[2] < 5e-3, errs
    assert 1.7 < order[1] < 2.3, (errs, order)


@pytest.mark.parametrize("lam", [0.0, 1.0], ids=["heat", "ou"])
def test_radial_heat_and_ou_against_closed_form(lam):
    """w in R^3 is an OU process (heat for lam = 0) started from N(0, s0^2 I): w_t ~ N(0, var(t) I), so
    d s^2 / var(t) ~ chi^2_3 with s = |w|/sqrt d: the Bessel drift and the s = 0 boundary are checked."""
    d, tau, t_end, s0 = 3, 0.4, 1.0, 0.8
    prob = pde.radial_problem(d, [[1.0, 1.5]], radial_points=16, angular_points=8)
    init = Model(d=d, m=1, sigma_w=s0)
    e = math.exp(-2 * lam * t_end)
    var = s0**2 + 2 * tau * t_end if lam == 0 else s0**2 * e + tau / lam * (1 - e)
    errs = []
    for n in (100, 200, 400):
        grid = pde.make_grid(prob, n, initial=init, extent=4.0)
        flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=0.0, weight_decay=lam, temperature=tau))
        s = flow.advance_to(flow.init(init), t_end)
        exact = np.diff(special.gammainc(d / 2, d * grid.faces(0) ** 2 / (2 * var)))
        errs.append(np.abs(s.density * grid.cell_volume - exact).sum())
    print(f"radial lam={lam}: L1 errors {errs}")
    assert errs[2] < 2e-4, errs
    assert 1.6 < math.log2(errs[1] / errs[2]) < 2.4, errs


# ------------------------------------------------------------------------------------------------------------
# the velocity field against the particle engine and an independent quadrature
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation,tol", [("relu", 1e-13), ("erf", 5e-9)])
def test_plane_velocities_match_population_closed_forms(rng, activation, tol):
    """The half-line / Gauss-Hermite rule in x against population.py's closed forms, on particles."""
    prob = pde.plane_problem(teacher=TEACHER, activation=activation)
    model = Model(d=1, m=37, activation=activation)
    theta = init_particles(model, rng)
    dyn = Dynamics(lr=0.7, layer_lr=(1.3, 0.8, 1.0), weight_decay=0.05)
    v = pde.particle_velocities(prob, pde.PDEParams.from_dynamics(dyn), theta)
    want = population_velocities(theta, TEACHER, model, dyn)
    assert np.abs(v - want).max() < tol * np.abs(want).max()
    # the risk of the same rule against population_risk
    from meanfield.population import population_risk

    assert abs(pde.particle_risk(prob, theta) - population_risk(theta, TEACHER, model)) < tol


def test_plane_velocities_match_finite_data_engine(rng):
    prob, X = _finite_problem(n=13, activation="tanh")
    model = Model(d=1, m=21, activation="tanh")
    theta = init_particles(model, rng)
    v = pde.particle_velocities(prob, None, theta)
    np.testing.assert_allclose(v, velocities(theta, X, prob.y, model), rtol=0, atol=1e-14)


def test_grid_field_is_the_particle_field_of_the_cell_masses():
    """A density made of k_c/m mass in a few cells is the particle measure with k_c particles at each of those
    cell centres: the face velocities of the scheme are then the particles' population velocities at the
    faces' (a, w) (a-faces: v_a depends on w only, plus weight decay)."""
    prob = pde.plane_problem(teacher=TEACHER, activation="relu")
    grid = pde.make_grid(prob, 16, extent=3.0)
    params = pde.PDEParams(lr=1.0, weight_decay=0.1)
    flow = pde.pde_flow(prob, grid, params)
    counts = {(3, 5): 2, (9, 12): 1, (12, 2): 3}
    m = sum(counts.values())
    rho = np.zeros(grid.cells)
    particles = []
    ac, wc = grid.centres(0), grid.centres(1)
    for (i, j), k in counts.items():
        rho[i, j] = k / m / grid.cell_volume
        particles += [[ac[i], wc[j]]] * k
    theta = np.array(particles)
    va, vw = pde.face_velocities(flow, flow.init(rho))
    model = Model(d=1, m=m, activation="relu")
    dyn = Dynamics(lr=1.0, weight_decay=0.1)
    # probe particles sitting on faces: add them with zero output weight so that the measure is unchanged
    af, wf = grid.faces(0), grid.faces(1)
    probe_a = np.array([[af[4], wc[7]], [af[10], wc[1]]])
    probe_w = np.array([[ac[6], wf[9]], [ac[2], wf[3]]])
    big = Model(d=1, m=m + 2, activation="relu")
    for probe, field, idx in ((probe_a, va, [(4, 7), (10, 1)]), (probe_w, vw, [(6, 9), (2, 3)])):
        # m + 2 particles with the real ones' a scaled by (m + 2)/m: the same f as the m particles
        full = np.vstack([theta, probe])
        full[:m, 0] *= (m + 2) / m
        full[m:, 0] = 0.0
        for r, (i, j) in enumerate(idx):
            full[m:, 0] = 0.0
            if field is va:  # a probe with a = 0 leaves f unchanged and has v_a = -g(w)
                full[m + r, 0] = 0.0
                pv = population_velocities(full, TEACHER, big, dyn)
                assert abs(pv[m + r, 0] - (field[i, j] + 0.1 * af[i])) < 1e-13
            else:  # a probe with a = 1e-300 leaves f unchanged and has v_w / a = -h(w) without weight decay
                full[m + r, 0] = 1e-300
                h = -population_velocities(full, TEACHER, big, Dynamics(lr=1.0))[m + r, 1] / 1e-300
                want = -ac[i] * h - 0.1 * wf[j]
                assert abs(want - field[i, j]) < 1e-12 * max(1.0, abs(want))


def _cartesian_dpsi(prob, s_grid, rho_masses, s_eval, n_gh=120, n_ang=256):
    """d/ds of Psi(s) = E_x[(f(x) - f*(x)) a0 sigma(s e.x)] by a tensor Gauss-Hermite rule in x in R^2 and an
    equispaced rule over directions (exact averaging of a rotation-invariant measure on a ring), numpy only."""
    from scipy.special import expit

    def sp(z):
        return np.logaddexp(0.0, z)

    x, w = np.polynomial.hermite_e.hermegauss(n_gh)
    w = w / w.sum()
    X1, X2 = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    ang = 2 * np.pi * np.arange(n_ang) / n_ang
    c, sn = np.cos(ang), np.sin(ang)

    def ring(sr):  # E_u sigma(sr u.x), u uniform on the circle (|w|/sqrt d = sr so w.x/sqrt d = sr u.x)
        return sp(sr * (X1[..., None] * c + X2[..., None] * sn)).mean(-1)

    f = sum(mass * prob.a0 * ring(sr) for sr, mass in zip(s_grid, rho_masses))
    fs = sum(a * ring(sr) for a, sr in prob.teacher)
    res = f - fs
    return np.array([(W * res * prob.a0 * expit(se * X1) * X1).sum() for se in s_eval])


def test_radial_potential_against_cartesian_quadrature():
    """The reduction Psi'(s) = E_R[r(R) R Phi'(sR)] (chi and Jacobi rules) against a direct 2-D quadrature."""
    prob = pde.radial_problem(2, [[1.0, 1.5], [0.5, 0.6]], activation="softplus")
    s_pts = np.array([0.4, 0.9, 1.7])
    masses = np.array([0.5, 0.3, 0.2])
    v = pde.particle_velocities(prob, pde.PDEParams(lr=1.0), np.repeat(s_pts, [5, 3, 2]))
    dpsi = -v * prob.d / prob.a0
    want = _cartesian_dpsi(prob, s_pts, masses, np.repeat(s_pts, [5, 3, 2]))
    np.testing.assert_allclose(dpsi, want, rtol=0, atol=1e-10 * np.abs(want).max())
    # and the grid's face velocities are the same formula on cell masses
    grid = pde.make_grid(prob, 40, extent=2.0)
    flow = pde.pde_flow(prob, grid)
    rho = np.zeros(40)
    idx = [4, 11, 23]
    rho[idx] = masses / grid.cell_volume
    vf = pde.face_velocities(flow, flow.init(rho))
    sf = grid.faces(0)
    want_f = -_cartesian_dpsi(prob, grid.centres(0)[idx], masses, sf[[5, 17, 30]]) * prob.a0 / prob.d
    np.testing.assert_allclose(vf[[5, 17, 30]], want_f, rtol=0, atol=1e-10 * np.abs(want_f).max())


# ------------------------------------------------------------------------------------------------------------
# grid convergence at the scheme's order
# ------------------------------------------------------------------------------------------------------------


def test_grid_convergence_of_the_risk_at_second_order():
    """Risk at t = 1 (lr = 2) on grids of 32, 64, 128 cells per side against a 384^2 reference, dt tied to h by
    the CFL rule: the fitted order of |R_n - R_ref| is the scheme's order 2 (MUSCL + Heun)."""
    prob, _ = _finite_problem()
    init = Model(d=1, m=1)

    def risk(n):
        grid = pde.make_grid(prob, n, initial=init, extent=(7.0, 7.0))
        flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=2.0, order=2), tolerance=1e-3)
        return flow.observe(flow.advance_to(flow.init(init), 1.0))["risk"]

    ref = risk(384)
    sizes = np.array([32, 64, 128])
    errs = np.array([abs(risk(n) - ref) for n in sizes])
    fitted = -_slope(1.0 / sizes, errs) * -1
    print(f"grid convergence: errors {errs}, fitted order {fitted:.3f}")
    assert abs(fitted - 2.0) < 0.3, (errs, fitted)


# ------------------------------------------------------------------------------------------------------------
# propagation of chaos
# ------------------------------------------------------------------------------------------------------------


def _assert_chaos(res, keys, setting, cfg, nodes):
    """Every r.m.s. series of ``keys`` has a fitted log-log slope within -1/2 +/- 0.15, and the deterministic
    bias of R(mu_T) (the grid's error plus the particles' time-step error, against the Gauss-rule reference at
    a quarter of the step) is below 10 % of the fluctuation at the largest m."""
    from meanfield.figures.chaos_pde import fit_slope, quadrature_reference

    fine = quadrature_reference(setting, cfg, nodes, cfg["particle_dt"] / 4)
    bias = abs(res["risk_pde"] - fine) + abs(quadrature_reference(setting, cfg, nodes) - fine)
    slopes = {k: fit_slope(res["sizes"], res["rms_" + k]) for k in keys}
    print({k: f"{b:.3f} +/- {e:.3f}" for k, (b, e) in slopes.items()}, f"bias {bias:.2e}",
          f"r.m.s. risk at m = {res['sizes'][-1]}: {res['rms_risk'][-1]:.2e}")
    for k, (b, _) in slopes.items():
        assert abs(b + 0.5) < 0.15, (k, b, res["rms_" + k])
    assert bias < 0.1 * res["rms_risk"][-1], (bias, res["rms_risk"][-1])


def test_propagation_of_chaos_plane():
    """m = 2^4 .. 2^10 i.i.d. particles from the PDE's initial law, trained by the particle engine (meanfield.flow,
    RK4) on the same 8 points, against the 96^2 grid solution at T = 2, 32 seeds (meanfield.figures.chaos_pde,
    quick sizes): the r.m.s. risk difference, the coupling distance to the nonlinear particles (the same initial
    points moved by the PDE's field) and the W2 of the (a, w) marginals all fall like m^-1/2; the grid's error
    of R(mu_T), against a Gauss-Hermite particle reference, is below 10 % of the risk fluctuation at m = 2^10.
    (The plain 2-D W2 has the slower empirical rate sqrt(log m / m) and is only in the figure.)"""
    from meanfield.figures.chaos_pde import plane_chaos, settings

    cfg = {**settings(quick=True)["plane"], "w2_seeds": 0}
    res = plane_chaos(**cfg)
    _assert_chaos(res, ("risk", "coupling", "w2_marginal"), "plane", cfg, 60)


def test_propagation_of_chaos_radial():
    """Radial particles s_j = |w_j|/sqrt d (w_j ~ N(0, 0.7^2 I_2)) moved by RK4 steps with their own velocities,
    m = 2^4 .. 2^10, 32 seeds, against the 512-cell grid at T = 5: the r.m.s. risk difference, the coupling
    distance and the exact 1-D W2 (to the piecewise-constant density) fall like m^-1/2; the grid's error of
    R(mu_T), against a Gauss-Laguerre particle reference, is below 10 % of the fluctuation at m = 2^10."""
    from meanfield.figures.chaos_pde import radial_chaos, settings

    cfg = settings(quick=True)["radial"]
    res = radial_chaos(**cfg)
    assert res["map_error"] < 1e-10  # the spline of the nonlinear flow map against its RK4 steps
    _assert_chaos(res, ("risk", "coupling", "w2"), "radial", cfg, 40)


def test_field_velocities_are_the_face_velocities_and_the_coupling_ode():
    """pde.field_velocities at the cell faces reproduce the scheme's face velocities (plane and radial, with
    weight decay and layer rates), and a particle measure's own velocities (particle_velocities) with weights
    equal to repeated particles."""
    prob = pde.plane_problem(teacher=TEACHER, activation="relu")
    grid = pde.make_grid(prob, 24, extent=3.0)
    flow = pde.pde_flow(prob, grid, pde.PDEParams(lr=1.3, layer_lr=(0.7, 1.2), weight_decay=0.1), tolerance=0.1)
    st = flow.advance(flow.init(Model(d=1, m=1)), 5)
    va, vw = pde.face_velocities(flow, st)
    af, wf, ac, wc = grid.faces(0), grid.faces(1), grid.centres(0), grid.centres(1)
    for (A, W), comp, want in ((np.meshgrid(af, wc, indexing="ij"), 0, va),
                               (np.meshgrid(ac, wf, indexing="ij"), 1, vw)):
        v = pde.field_velocities(flow, st, np.column_stack([A.ravel(), W.ravel()]))
        np.testing.assert_allclose(v[:, comp].reshape(A.shape), want, rtol=0, atol=1e-14 * np.abs(want).max())
    rp = pde.radial_problem(3, [[1.0, 1.5]], radial_points=16, angular_points=8)
    rg = pde.make_grid(rp, 100)
    rf = pde.pde_flow(rp, rg, pde.PDEParams(lr=2.0, weight_decay=0.05), tolerance=0.1)
    rs = rf.advance(rf.init(Model(d=3, m=1, sigma_w=0.7)), 20)
    vf = pde.face_velocities(rf, rs)
    np.testing.assert_allclose(pde.field_velocities(rf, rs, rg.faces(0)[1:]), vf[1:], rtol=0,
                               atol=1e-14 * np.abs(vf).max())
    # weights: particles (x, x, y) with 1/3 each = particles (x, y) with weights (2/3, 1/3)
    for problem, pts in ((prob, np.array([[0.4, -0.3], [1.2, 0.8]])), (rp, np.array([0.5, 1.3]))):
        rep = pts[[0, 0, 1]]
        v3 = pde.particle_velocities(problem, None, rep)
        v2 = pde.particle_velocities(problem, None, pts, weights=[2 / 3, 1 / 3])
        np.testing.assert_allclose(v2, v3[1:], rtol=1e-13, atol=1e-15)
        assert abs(pde.particle_risk(problem, rep) - pde.particle_risk(problem, pts, [2 / 3, 1 / 3])) < 1e-15
    with pytest.raises(ConfigError, match="weights"):
        pde.particle_risk(prob, np.array([[0.4, -0.3], [1.2, 0.8]]), [0.5, 0.6])


def test_w2_to_the_piecewise_constant_density():
    """density="cells": a uniform density on [0, L] against m points at the quantile midpoints is
    L / (sqrt(12) m) exactly; against any density it equals a brute-force integral of the quantile functions
    (np.interp of the cumulative masses); the plane's marginals the same; refused for a 2-D grid."""
    rp = pde.radial_problem(3, [[1.0, 1.5]], radial_points=16, angular_points=8)
    grid = pde.Grid((0.0,), (2.0,), (10,))
    flow = pde.pde_flow(rp, grid)
    m = 7
    w = pde.w2_to_particles(flow, flow.init(np.full(10, 0.5)), (np.arange(m) + 0.5) / m * 2.0, density="cells")
    assert abs(w.value - 2.0 / math.sqrt(12) / m) < 1e-15 and w.params["solver"] == "quantile"

    def brute(faces, mass, x, n=1_000_000):
        C = np.r_[0.0, np.cumsum(mass)]
        C /= C[-1]
        u = (np.arange(n) + 0.5) / n
        return math.sqrt(np.mean((np.interp(u, C, faces) - np.sort(x)[(u * x.size).astype(int)]) ** 2))

    rg = pde.make_grid(rp, 100)
    rf = pde.pde_flow(rp, rg, pde.PDEParams(lr=2.0))
    rs = rf.advance(rf.init(Model(d=3, m=1, sigma_w=0.7)), 20)
    x = np.random.default_rng(0).gamma(3.0, 0.3, 50)
    want = brute(rg.faces(0), rs.density, x)
    assert abs(pde.w2_to_particles(rf, rs, x, density="cells").value - want) < 1e-6 * want
    assert abs(pde.marginal_w2(rf, rs, x)[0] - want) < 1e-6 * want
    prob, _ = _finite_problem()
    flow2 = pde.pde_flow(prob, pde.make_grid(prob, 32, initial=Model(d=1, m=1)))
    st2 = flow2.init(Model(d=1, m=1))
    theta = init_particles(Model(d=1, m=40), 3)
    mass = st2.density * flow2.grid.cell_volume
    got = pde.marginal_w2(flow2, st2, theta)
    for axis in (0, 1):
        want = brute(flow2.grid.faces(axis), mass.sum(axis=1 - axis), theta[:, axis])
        assert abs(got[axis] - want) < 3e-5 * want  # the midpoint rule's error at the steep Gaussian tails
    with pytest.raises(ConfigError, match="density"):
        pde.w2_to_particles(flow2, st2, theta, density="cells")


# ------------------------------------------------------------------------------------------------------------
# determinism, configuration
# ------------------------------------------------------------------------------------------------------------

_THREAD_SCRIPT = r"""
import json, numpy as np
from meanfield import pde
from meanfield.model import Model
from meanfield.data import teacher_outputs
T = np.array([[1.0, 1.5], [-0.5, -0.7]])
out = {}
for act in ("erf", "relu"):
    prob = pde.plane_problem(teacher=T, activation=act)
    grid = pde.make_grid(prob, 40)
    flow = pde.pde_flow(prob, grid, pde.PDEParams(temperature=0.01), parallel=True)
    s = flow.advance(flow.init(Model(d=1, m=1)), 30)
    out[act] = s.density.tobytes().hex() + repr(s.t) + repr(s.outflow)
prob = pde.radial_problem(3, [[1.0, 1.5]], radial_points=16, angular_points=8)
flow = pde.pde_flow(prob, pde.make_grid(prob, 300), pde.PDEParams(temperature=0.01), parallel=True)
s = flow.advance(flow.init(), 50)
out["radial"] = s.density.tobytes().hex() + repr(s.t)
print(json.dumps(out))
"""


def test_bitwise_identical_across_thread_counts_and_serial():
    res = []
    for nt in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=nt)
        p = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True,
                           check=True)
        res.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert res[0] == res[1]
    # the serial twin gives the same bits
    prob = pde.radial_problem(3, [[1.0, 1.5]], radial_points=16, angular_points=8)
    flow = pde.pde_flow(prob, pde.make_grid(prob, 300), pde.PDEParams(temperature=0.01), parallel=False)
    s = flow.advance(flow.init(), 50)
    assert s.density.tobytes().hex() + repr(s.t) == res[0]["radial"]


def test_advance_to_lands_on_time_and_composes():
    prob, _ = _finite_problem()
    flow = pde.pde_flow(prob, pde.make_grid(prob, 24))
    s = flow.advance_to(flow.init(), 0.37)
    assert s.t == 0.37 and s.step > 0
    a = flow.advance(flow.advance(flow.init(), 3), 4)
    b = flow.advance(flow.init(), 7)
    assert a.step == b.step == 7 and a.t == b.t and np.array_equal(a.density, b.density)


def test_config_errors():
    prob, _ = _finite_problem()
    with pytest.raises(ConfigError, match="pde.order"):
        pde.PDEParams(order=3)
    with pytest.raises(ConfigError, match="pde.cfl"):
        pde.PDEParams(cfl=1.5)
    with pytest.raises(ConfigError, match="pde.temperature"):
        pde.PDEParams(temperature=-1)
    with pytest.raises(ConfigError, match="pde.cells"):
        pde.make_grid(prob, 4)
    with pytest.raises(ConfigError, match="pde.tolerance"):
        pde.make_grid(prob, 16, tolerance=0.0)
    with pytest.raises(ConfigError, match="model.d"):
        pde.make_grid(prob, 16, initial=Model(d=2, m=1))
    with pytest.raises(ConfigError, match="activation"):
        pde.radial_problem(3, [[1.0, 1.0]], activation="erf")
    with pytest.raises(ConfigError, match="teacher"):
        pde.plane_problem(teacher=np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="^d ="):
        pde.radial_problem(1, [[1.0, 1.0]])
