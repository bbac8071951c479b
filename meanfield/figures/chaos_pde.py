r"""Propagation of chaos against the PDE: m particles against the grid solution of the mean-field PDE.

m i.i.d. particles :math:`\theta_j(0)` from the initial law :math:`\mu_0` of the PDE are moved by their own
(particle) gradient flow up to a fixed time T and compared with the density :math:`\mu_T` that the grid solver
(:mod:`meanfield.pde`) reaches at T. Three distances, each with its theoretical rate:

* the **risk difference** :math:`R(\mu^m_T) - R(\mu_T)`: a smooth functional of the measure; its mean is
  O(1/m) and its fluctuation :math:`\sqrt m`-Gaussian, so its r.m.s. over seeds falls like :math:`m^{-1/2}`;
* the **coupling distance** :math:`D_m = \big(\frac1m\sum_j|\theta_j(T) - \bar\theta_j(T)|^2\big)^{1/2}`,
  :math:`\bar\theta_j(t) = \Phi_t(\theta_j(0))` the *nonlinear* particles: the same initial points moved by the
  velocity field of the PDE's solution :math:`\mu_t` (:func:`meanfield.pde.field_velocities`), not by their own.
  Sznitman's synchronous coupling: :math:`E\,|\theta_j(T) - \bar\theta_j(T)|^2 \le C(T)/m` in any dimension
  (the particles' field differs from the PDE's by a law-of-large-numbers error), and the fluctuations are
  :math:`\sqrt m`-Gaussian, so its r.m.s. over seeds falls like :math:`m^{-1/2}`. It is the part of the distance
  to the PDE created by the dynamics: :math:`W_2(\mu^m_T, \mu_T) \le D_m + W_2(\Phi_T\#\mu^m_0, \Phi_T\#\mu_0)`,
  the second term being the sampling error of the initial points carried by the (Lipschitz) flow map;
* the plain :math:`W_2(\mu^m_T, \mu_T)`, dominated by that sampling term, so with the rate of an empirical
  measure: in one dimension (radial) :math:`E W_2^2 \asymp 1/m` up to a :math:`\log\log m` factor for laws with
  Gaussian tails (Bobkov & Ledoux), rate :math:`m^{-1/2}`; in two dimensions (plane) not: for the standard
  Gaussian of :math:`R^2`, :math:`\log m/m \lesssim E W_2^2 \lesssim (\log m)^2/m` (Ledoux 2017, after
  Ajtai–Komlós–Tusnády), so its fitted slope is shallower than -1/2 and is reported beside that rate (the
  local slope of :math:`\sqrt{\log m/m}`), never asserted at -1/2. The plane's grid measure (cells as points at
  their centres, through POT) adds a quantisation floor of about :math:`h/\sqrt 6`; the radial W2 is computed
  against the piecewise-constant density itself (quantile formula, no floor).

The two settings:

* **plane** (:math:`\theta = (a, w)`, d = 1, erf, 8 training points, T = 2): particles moved by
  :func:`meanfield.flow.particle_flow` (the particle engine, RK4, dt = 0.05) on the same data set; risk
  difference, coupling distance, the W2 of the (a, w) marginals (exact, 1-D; a lower bound of the joint W2 with
  the 1-D rate) and, on fewer seeds and sizes, the plain 2-D W2;
* **radial** (d = 2, softplus, one teacher ring, T = 5): radii :math:`s_j = |w_j|/\sqrt d` of
  :func:`meanfield.model.init_particles` moved by RK4 steps (dt = 0.5) of
  :func:`meanfield.pde.particle_velocities`; risk difference, coupling distance and the exact 1-D W2.

The nonlinear particles use the same RK4 steps, with the PDE's field at the stage times (the grid solution is
advanced to every half step); in the radial setting through the spline of their flow map
(:func:`radial_flow_map`, within 1e-13 of the RK4 steps). Every (m, seed) draws its initial points from its own
stream ``default_rng([seed0 + seed, m])``, so sizes are independent and the standard errors of the fits honest.

**Deterministic bias** (:func:`compute` measures it; docs/conventions.md): the grid's error of
:math:`R(\mu_T)` against a grid-free reference (:func:`quadrature_reference`: weighted Gauss–Hermite /
Gauss–Laguerre nodes of :math:`\mu_0` moved by RK4 in the field of their weighted measure, converged to 1e-7
(plane) and 1e-9 (radial)) is -3e-9 for the radial grid of 2048 cells and 8e-6 for the plane's 192^2 (6e-5 at
96^2); the particles' time-step error is 2e-9 (radial, dt = 0.5) and 5e-10 (plane), against r.m.s.
fluctuations of about 8e-5 (radial) and 6e-4 (plane) at m = 2^14. (The Heun step with dt = 0.25 used before
had a 2.4e-6 radial time-step bias, 1 % of the fluctuation at m = 2^10: the shallow radial risk slopes once
measured, -0.33 with 6 seeds and +0.33 with 3, were the noise of an r.m.s. from k seeds, relative standard
deviation :math:`1/\sqrt{2k}`, over a short range of m, not a bias.)

:func:`compute` returns every number the figure shows, :func:`plot` draws them: figure ``chaos_pde`` of
``meanfield figures``, configured by ``examples/configs/figures/chaos_pde.toml`` (:func:`settings` reads it).
tests/test_pde.py asserts the slopes at its quick sizes with :func:`plane_chaos` and :func:`radial_chaos`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plane_setup", "plane_chaos", "radial_setup", "radial_particles", "radial_chaos", "stage_states",
           "nonlinear_particles", "radial_flow_map", "quadrature_reference", "fit_slope", "settings", "compute",
           "plot", "REFERENCE_NODES", "TITLE", "REFERENCE"]

TITLE = "The mean-field limit against the grid PDE: propagation of chaos"
REFERENCE = ("Sznitman (1991), Topics in propagation of chaos; Mei, Montanari & Nguyen (2018); Chizat & Bach (2018); "
             "Bobkov & Ledoux (2019) and Ledoux (2017) for the empirical W2 rates")

def fit_slope(m, y) -> tuple:
    r"""Least-squares slope of :math:`\log y` against :math:`\log m`, and its standard error
    :math:`\sqrt{\sum r_i^2/(n-2) / \sum (x_i - \bar x)^2}` (nan with fewer than three points)."""
    x, z = np.log(np.asarray(m, float)), np.log(np.asarray(y, float))
    b, a = np.polyfit(x, z, 1)
    n = x.size
    if n < 3:
        return float(b), math.nan
    resid = z - (a + b * x)
    return float(b), float(math.sqrt(resid @ resid / (n - 2) / np.sum((x - x.mean()) ** 2)))


def _rms(values) -> float:
    return float(math.sqrt(np.mean(np.square(values))))


def stage_states(flow, state, T, dt) -> list:
    """The grid solution at every half step ``k dt / 2``, k = 0 .. 2 T/dt (the RK4 stage times)."""
    n = int(round(T / dt))
    if not math.isclose(n * dt, T, rel_tol=1e-12):
        raise ValueError(f"T = {T} is not a multiple of dt = {dt}")
    states = [state]
    for k in range(1, 2 * n + 1):
        states.append(flow.advance_to(states[-1], T if k == 2 * n else k * dt / 2))
    return states


def nonlinear_particles(flow, states, theta0, dt):
    r"""The points ``theta0`` moved by RK4 steps of the PDE's own velocity field
    (:func:`meanfield.pde.field_velocities` of ``states``, the output of :func:`stage_states`): the nonlinear
    particles :math:`\bar\theta_j(T) = \Phi_T(\theta_j(0))` of the coupling."""
    from meanfield.pde import field_velocities

    x = np.array(theta0, dtype=np.float64)
    for i in range(0, len(states) - 1, 2):
        s0, sm, s1 = states[i], states[i + 1], states[i + 2]
        k1 = field_velocities(flow, s0, x)
        k2 = field_velocities(flow, sm, x + 0.5 * dt * k1)
        k3 = field_velocities(flow, sm, x + 0.5 * dt * k2)
        k4 = field_velocities(flow, s1, x + dt * k3)
        x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return x


def _coupling(theta, theta_bar) -> float:
    diff = np.asarray(theta, float) - np.asarray(theta_bar, float)
    return float(math.sqrt(np.mean(np.square(diff).reshape(diff.shape[0], -1).sum(1))))


def plane_setup(cells=192, n_train=8, data_seed=0, teacher=((1.0, 1.5),), activation="erf", lr=1.0, **_):
    """(problem, X, initial law, flow) of the plane comparison: a finite data set with d = 1 labelled by the
    teacher, standard normal initial law, the grid of ``make_grid``'s rule, the flow with learning rate lr."""
    from meanfield import pde
    from meanfield.data import teacher_outputs
    from meanfield.model import Model

    X = np.random.default_rng(data_seed).standard_normal((n_train, 1))
    T = np.asarray(teacher, dtype=np.float64)
    prob = pde.plane_problem((X, teacher_outputs(T, X, activation)), teacher=T, activation=activation)
    init = Model(d=1, m=1, activation=activation)
    flow = pde.pde_flow(prob, pde.make_grid(prob, cells, initial=init), pde.PDEParams(lr=lr))
    return prob, X, init, flow


def _coarse_measure(flow, state, factor):
    """The plane density summed over ``factor`` x ``factor`` blocks of cells: (centres, normalised masses)."""
    from meanfield import pde

    if factor == 1:
        return pde.as_measure(flow, state, min_weight=1e-14)
    na, nw = flow.grid.cells
    if na % factor or nw % factor:
        raise ValueError(f"w2_coarsen = {factor} does not divide the cells {flow.grid.cells}")
    mass = (state.density * flow.grid.cell_volume).reshape(na // factor, factor, nw // factor, factor).sum((1, 3))
    ac = flow.grid.faces(0)[::factor]
    wc = flow.grid.faces(1)[::factor]
    A, W = np.meshgrid(0.5 * (ac[1:] + ac[:-1]), 0.5 * (wc[1:] + wc[:-1]), indexing="ij")
    w = mass.reshape(-1) / mass.sum()
    keep = w > 1e-14
    return np.column_stack([A.reshape(-1)[keep], W.reshape(-1)[keep]]), w[keep] / w[keep].sum()


def _fresh(seed0, s, m):
    """The stream of the initial points of seed s at width m (independent across sizes and seeds)."""
    return np.random.default_rng([seed0 + s, m])


def plane_chaos(sizes, seeds, w2_sizes=(), w2_seeds=0, *, cells=192, T=2.0, lr=1.0, particle_dt=0.05, seed0=1000,
                w2_coarsen=1, particle_integrator="rk4", **setup):
    """Plane: per m, over ``seeds`` seeds, the risk differences, coupling distances and marginal W2
    (:func:`meanfield.pde.marginal_w2`, the root sum of squares of the a and w marginals); the plain 2-D W2
    (POT, cells as points) over the first ``w2_seeds`` seeds for m in ``w2_sizes``, the grid measure summed over
    ``w2_coarsen`` × ``w2_coarsen`` blocks of cells (the network simplex's work grows with the number of cells).

    Returns
    -------
    dict
        ``sizes``; ``risk_diffs``, ``coupling``, ``w2_marginal`` (m x seeds) and their r.m.s. ``rms_risk``,
        ``rms_coupling``, ``rms_w2_marginal``; ``w2_sizes``, ``w2`` (m x w2_seeds), ``rms_w2``; ``risk_pde``,
        ``h`` (cell widths of the 2-D W2's grid measure), ``outflow``.
    """
    from meanfield import pde
    from meanfield.flow import Dynamics, particle_flow
    from meanfield.model import Model, init_particles
    from meanfield.transport import exact

    prob, X, init, flow = plane_setup(cells=cells, lr=lr, **setup)
    states = stage_states(flow, flow.init(init), T, particle_dt)
    final = states[-1]
    R_pde = flow.observe(final)["risk"]
    w2_sizes = [m for m in w2_sizes if m in sizes]
    meas = _coarse_measure(flow, final, w2_coarsen) if w2_sizes and w2_seeds else None
    n_steps = int(round(T / particle_dt))
    models = {m: Model(d=1, m=m, activation=prob.activation) for m in sizes}
    theta0 = {(m, s): init_particles(models[m], _fresh(seed0, s, m)) for m in sizes for s in range(seeds)}
    # the nonlinear particles do not interact: every seed and size in one batch
    keys = list(theta0)
    bar = nonlinear_particles(flow, states, np.vstack([theta0[k] for k in keys]), particle_dt)
    bars = dict(zip(keys, np.split(bar, np.cumsum([theta0[k].shape[0] for k in keys])[:-1])))
    out = {"sizes": list(sizes), "risk_diffs": [], "coupling": [], "w2_marginal": [], "w2_sizes": w2_sizes,
           "w2": []}
    for m in sizes:
        pf = particle_flow((X, prob.y), models[m], Dynamics(lr=lr, dt=particle_dt, integrator=particle_integrator))
        d, c, wm, w2 = [], [], [], []
        for s in range(seeds):
            theta = pf.advance(pf.init(theta0[m, s]), n_steps).theta
            d.append(pde.particle_risk(prob, theta) - R_pde)
            c.append(_coupling(theta, bars[m, s]))
            wm.append(float(np.sqrt(np.sum(pde.marginal_w2(flow, final, theta) ** 2))))
            if m in w2_sizes and s < w2_seeds:
                w2.append(exact(theta, meas[0], weights_nu=meas[1]).value)
        out["risk_diffs"].append(d)
        out["coupling"].append(c)
        out["w2_marginal"].append(wm)
        if w2:
            out["w2"].append(w2)
    for key, src in (("risk", "risk_diffs"), ("coupling", "coupling"), ("w2_marginal", "w2_marginal"),
                     ("w2", "w2")):
        out["rms_" + key] = [_rms(v) for v in out[src]]
    out.update(risk_pde=R_pde, outflow=float(final.outflow), seeds=seeds, w2_seeds=w2_seeds,
               h=(flow.grid.h * w2_coarsen).tolist())
    return out


def radial_setup(cells=2048, d=2, teacher=((1.0, 1.5),), activation="softplus", radial_points=24, angular_points=8,
                 sigma_w=0.7, lr=4.0, **_):
    """(problem, parameters, initial law, flow) of the radial comparison."""
    from meanfield import pde
    from meanfield.model import Model

    prob = pde.radial_problem(d, np.asarray(teacher, dtype=np.float64), activation=activation,
                              radial_points=radial_points, angular_points=angular_points)
    init = Model(d=d, m=1, sigma_w=sigma_w)
    params = pde.PDEParams(lr=lr)
    return prob, params, init, pde.pde_flow(prob, pde.make_grid(prob, cells, initial=init), params)


def _rk4(velocity, y, t_end, dt):
    """y moved by RK4 steps of the autonomous field ``velocity`` up to ``t_end`` (a multiple of dt)."""
    y = np.array(y, dtype=np.float64)
    for _ in range(int(round(t_end / dt))):
        k1 = velocity(y)
        k2 = velocity(y + 0.5 * dt * k1)
        k3 = velocity(y + 0.5 * dt * k2)
        k4 = velocity(y + dt * k3)
        y = y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def radial_particles(prob, params, s, t_end, dt):
    """Radii moved by RK4 steps of :func:`meanfield.pde.particle_velocities` (their own field) up to ``t_end``."""
    from meanfield import pde

    return _rk4(lambda y: pde.particle_velocities(prob, params, y), s, t_end, dt)


def quadrature_reference(key, cfg, nodes, dt=None) -> float:
    r""":math:`R(\mu_T)` without the grid: a Gauss rule of the initial law (plane: Gauss–Hermite nodes in a and
    w, ``nodes``^2 points; radial: ``nodes`` Gauss–Laguerre nodes of :math:`d s^2/(2\sigma_w^2)\sim
    \Gamma(d/2)`), its points moved by RK4 steps (``dt``, default the particles') of the velocity field of the
    weighted measure (:func:`meanfield.pde.particle_velocities` with ``weights``). The flow map is smooth, so
    this converges fast in ``nodes``: the grid's error is ``risk_pde`` minus this."""
    from scipy import special

    from meanfield import pde

    dt = cfg["particle_dt"] if dt is None else dt
    if key == "plane":
        prob, _, init, flow = plane_setup(**cfg)
        x, w = special.roots_hermitenorm(nodes)
        w = w / w.sum()
        A, W = np.meshgrid(init.sigma_a * x, init.sigma_w * x, indexing="ij")
        theta0, weights = np.column_stack([A.ravel(), W.ravel()]), np.outer(w, w).ravel()
        weights = weights / weights.sum()
        params = flow.params
    else:
        prob, params, init, _ = radial_setup(**{**cfg, "cells": 16})
        u, w = special.roots_genlaguerre(nodes, prob.d / 2.0 - 1.0)
        theta0, weights = init.sigma_w * np.sqrt(2.0 * u / prob.d), w / w.sum()
    thetaT = _rk4(lambda y: pde.particle_velocities(prob, params, y, weights), theta0, cfg["T"], dt)
    return pde.particle_risk(prob, thetaT, weights)


def radial_flow_map(flow, states, dt, s_max, nodes=2049):
    r"""The flow map :math:`s_0 \mapsto \bar s(T)` of the PDE's field (the RK4 steps of
    :func:`nonlinear_particles` from ``nodes`` equispaced radii on :math:`[0, s_{\max}]`) as a cubic spline:
    the same map for every seed and size (one dimension: the nonlinear particles never cross)."""
    from scipy.interpolate import CubicSpline

    s0 = np.linspace(0.0, s_max, nodes)
    return CubicSpline(s0, nonlinear_particles(flow, states, s0, dt))


def radial_chaos(sizes, seeds, *, cells=2048, T=5.0, particle_dt=0.5, sigma_w=0.7, seed0=0,
                 particle_integrator="rk4", **setup):
    r"""Radial: per m, over ``seeds`` seeds, the risk differences, coupling distances and exact W2 (the
    piecewise-constant grid density, :func:`meanfield.pde.w2_to_particles` with ``density="cells"``); the radii
    are :math:`|w|/\sqrt d` of :func:`meanfield.model.init_particles` (``default_rng([seed0 + seed, m])``). The
    nonlinear particles come from :func:`radial_flow_map`.

    Returns
    -------
    dict
        ``sizes``; ``risk_diffs``, ``coupling``, ``w2`` (m x seeds) and their r.m.s. ``rms_risk``,
        ``rms_coupling``, ``rms_w2``; ``risk_pde``, ``h``, ``outflow``, ``map_error`` (largest difference between
        the spline and the RK4 steps at 64 of the particles' initial radii).
    """
    from meanfield import pde
    from meanfield.model import Model, init_particles

    if particle_integrator != "rk4":
        raise ValueError("the radial particles are moved by RK4 steps")
    prob, params, init, flow = radial_setup(cells=cells, sigma_w=sigma_w, **setup)
    states = stage_states(flow, flow.init(init), T, particle_dt)
    final = states[-1]
    R_pde = flow.observe(final)["risk"]
    s0 = {}
    for m in sizes:
        model = Model(d=prob.d, m=m, sigma_w=sigma_w)
        for seed in range(seeds):
            theta0 = init_particles(model, _fresh(seed0, seed, m))
            s0[m, seed] = np.linalg.norm(theta0[:, 1:], axis=1) / math.sqrt(prob.d)
    s_max = max(float(v.max()) for v in s0.values())
    fmap = radial_flow_map(flow, states, particle_dt, s_max)
    probe = np.sort(np.concatenate(list(s0.values())))[:: max(1, sum(v.size for v in s0.values()) // 64)]
    map_error = float(np.abs(fmap(probe) - nonlinear_particles(flow, states, probe, particle_dt)).max())
    out = {"sizes": list(sizes), "risk_diffs": [], "coupling": [], "w2": []}
    for m in sizes:
        d, c, w = [], [], []
        for seed in range(seeds):
            sT = radial_particles(prob, params, s0[m, seed], T, particle_dt)
            d.append(pde.particle_risk(prob, sT) - R_pde)
            c.append(_coupling(sT, fmap(s0[m, seed])))
            w.append(pde.w2_to_particles(flow, final, sT, density="cells").value)
        out["risk_diffs"].append(d)
        out["coupling"].append(c)
        out["w2"].append(w)
    for key, src in (("risk", "risk_diffs"), ("coupling", "coupling"), ("w2", "w2")):
        out["rms_" + key] = [_rms(v) for v in out[src]]
    out.update(risk_pde=R_pde, outflow=float(final.outflow), seeds=seeds, h=flow.grid.h.tolist(),
               map_error=map_error)
    return out


#: Gauss nodes of :func:`quadrature_reference` (per axis) and the coarser rule that measures its own error.
REFERENCE_NODES = {"plane": (80, 60), "radial": (80, 40)}


def _slopes(res, series):
    for name, sizes_key in series:
        y = res.get("rms_" + name)
        if y:
            res["slope_" + name], res["stderr_" + name] = fit_slope(res[sizes_key][: len(y)], y)


def _bias(key, cfg, res):
    """The deterministic errors beside the fluctuation, against the Gauss-rule reference at a quarter of the
    particles' step (``risk_reference``): ``grid_bias`` = R(mu_T) of the grid minus it, ``time_step_bias`` = the
    reference at the particles' step minus it, ``reference_nodes_change`` = its change with the coarser rule;
    and the mean risk difference per m with its standard error over seeds."""
    n, n_coarse = REFERENCE_NODES[key]
    fine = cfg["particle_dt"] / 4
    ref = quadrature_reference(key, cfg, n, fine)
    res["risk_reference"] = ref
    res["grid_bias"] = res["risk_pde"] - ref
    res["time_step_bias"] = quadrature_reference(key, cfg, n) - ref
    res["reference_nodes_change"] = abs(quadrature_reference(key, cfg, n_coarse, fine) - ref)
    d = [np.asarray(v) for v in res["risk_diffs"]]
    res["mean_risk"] = [float(v.mean()) for v in d]
    res["stderr_mean_risk"] = [float(v.std(ddof=1) / math.sqrt(v.size)) for v in d]


def settings(quick: bool = False, folder=None) -> dict:
    """The keyword arguments of :func:`plane_chaos` and :func:`radial_chaos` (``{"plane": ..., "radial": ...}``)
    from ``examples/configs/figures/chaos_pde.toml``, its ``[quick]`` sizes merged in when ``quick``."""
    from ._figure import load_figure_config

    _, params, _ = load_figure_config("chaos_pde", quick, folder)
    return {key: dict(params[key]) for key in ("plane", "radial")}


def _bias_ratio(res) -> float:
    """(|grid bias| + |time-step bias|) / r.m.s. risk difference at the widest m."""
    return (abs(res["grid_bias"]) + abs(res["time_step_bias"])) / res["rms_risk"][-1]


def compute(fig) -> dict:
    """Every number of the figure: per setting the widths, the distances per seed, their r.m.s., the fitted
    slopes with standard errors, the deterministic biases (:func:`_bias`), and the claims of the configuration.

    ``fig`` is a :class:`meanfield.figures._figure.FigureRun`; its ``params["plane"]`` and ``params["radial"]``
    are the keyword arguments of :func:`plane_chaos` and :func:`radial_chaos`."""
    cfg = {key: dict(fig.params[key]) for key in ("plane", "radial")}
    plane = plane_chaos(**cfg["plane"])
    _slopes(plane, [("risk", "sizes"), ("coupling", "sizes"), ("w2_marginal", "sizes"), ("w2", "w2_sizes")])
    radial = radial_chaos(**cfg["radial"])
    _slopes(radial, [("risk", "sizes"), ("coupling", "sizes"), ("w2", "sizes")])
    for key, res in (("plane", plane), ("radial", radial)):
        _bias(key, cfg[key], res)
    # the local slope of sqrt(log m / m), the 2-D empirical rate, over the plain W2's sizes
    m = np.asarray(plane["w2_sizes"], float)
    plane["theory_slope_w2"] = fit_slope(m, np.sqrt(np.log(m) / m))[0] if m.size >= 2 else math.nan
    claims = {f"plane_{k}_slope": plane["slope_" + k] for k in ("risk", "coupling", "w2_marginal")}
    claims.update({f"radial_{k}_slope": radial["slope_" + k] for k in ("risk", "coupling", "w2")})
    claims.update(plane_bias_ratio=_bias_ratio(plane), radial_bias_ratio=_bias_ratio(radial),
                  radial_map_error=radial["map_error"])
    highlights = {}
    for key, res, names in (("plane", plane, ("risk", "coupling", "w2_marginal", "w2")),
                            ("radial", radial, ("risk", "coupling", "w2"))):
        for name in names:
            if "slope_" + name in res:
                highlights[f"{key}: slope of {name.replace('_', ' ')}"] = res["slope_" + name]
                highlights[f"{key}: slope of {name.replace('_', ' ')}: standard error"] = res["stderr_" + name]
        highlights[f"{key}: r.m.s. risk difference at m = {res['sizes'][-1]}"] = res["rms_risk"][-1]
        highlights[f"{key}: grid bias of R(mu_T)"] = res["grid_bias"]
    if len(plane.get("rms_w2", [])) >= 2:
        highlights["plane: local slope of sqrt(log m / m) (2-D theory)"] = plane["theory_slope_w2"]
    sizes = (f"plane: m = {plane['sizes'][0]}..{plane['sizes'][-1]}, {plane['seeds']} seeds, "
             f"{cfg['plane']['cells']}^2 cells; radial: m = {radial['sizes'][0]}..{radial['sizes'][-1]}, "
             f"{radial['seeds']} seeds, {cfg['radial']['cells']} cells")
    return {"plane": plane, "radial": radial, "config": cfg, "quick": bool(fig.quick), "theory_slope": -0.5,
            "claims": claims, "highlights": highlights, "sizes": sizes}


def plot(numbers: dict, params: dict | None = None):
    r"""Two log-log panels (plane, radial): the r.m.s. over seeds of every distance against m, the fitted lines
    with their slopes and standard errors, and the theoretical rates (-1/2; the plane's 2-D W2: the shape of
    :math:`\sqrt{\log m/m}` and the grid floor). Returns the Figure (the caller saves it)."""
    from ._style import figure, finish

    fig, axes = figure(2, width=5.6, height=6.2)
    titles = {"plane": "plane (a, w): d = 1, erf, n = 8, T = {T:g}",
              "radial": "radial s = |w|/sqrt(d): d = 2, softplus, T = {T:g}"}
    series = {
        "plane": [("risk", "sizes", "C0", "o", "risk difference R(mu^m_T) - R(mu_T)"),
                  ("coupling", "sizes", "C2", "^", "coupling D_m (dynamics part)"),
                  ("w2_marginal", "sizes", "C1", "D", "W2 of the (a, w) marginals"),
                  ("w2", "w2_sizes", "C3", "s", "W2 in 2-D (cells as points)")],
        "radial": [("risk", "sizes", "C0", "o", "risk difference R(mu^m_T) - R(mu_T)"),
                   ("coupling", "sizes", "C2", "^", "coupling D_m (dynamics part)"),
                   ("w2", "sizes", "C1", "D", "W2 (1-D, exact)")],
    }
    for ax, key in zip(axes, ("plane", "radial")):
        res, cfg = numbers[key], numbers["config"][key]
        for name, sizes_key, color, marker, label in series[key]:
            y = np.asarray(res.get("rms_" + name, []), float)
            if not y.size:
                continue
            m = np.asarray(res[sizes_key], float)[: y.size]
            slope, err = res["slope_" + name], res["stderr_" + name]
            ax.loglog(m, y, marker, color=color, ms=4, label=f"{label}: slope {slope:.2f} +/- {err:.2f}")
            b, a = np.polyfit(np.log(m), np.log(y), 1)
            ax.loglog(m, np.exp(a + b * np.log(m)), "-", color=color, lw=0.8)
            if name == "w2" and key == "plane":
                shape = np.sqrt(np.log(m) / m)
                ax.loglog(m, y[0] * shape / shape[0], "--", color=color, lw=0.8,
                          label=f"2-D theory sqrt(log m / m): local slope {res['theory_slope_w2']:.2f}")
                floor = float(np.hypot(*res["h"]) / math.sqrt(12))
                ax.axhline(floor, color=color, ls=":", lw=0.8, label=f"grid floor ~ h/sqrt(6) = {floor:.2g}")
            else:
                ax.loglog(m, y[0] * (m / m[0]) ** -0.5, ":", color=color, lw=0.8)
        w2_seeds = f"; 2-D W2: {res['w2_seeds']} seeds" if res.get("w2_seeds") else ""
        ax.set(xlabel="width m (number of particles)", ylabel="r.m.s. over seeds (risk; distances in weight units)",
               title=titles[key].format(T=cfg["T"]) + f"\n{cfg['cells']} cells per axis, {res['seeds']} seeds"
               f"{w2_seeds}; dotted: slope -1/2\nbias of R(mu_T): grid {res['grid_bias']:.0e}, time step "
               f"{res['time_step_bias']:.0e}; r.m.s. at m = {res['sizes'][-1]}: {res['rms_risk'][-1]:.1e}")
        ax.title.set_fontsize(8)
        finish(ax, legend=False)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    quick = " (quick mode: small sizes)" if numbers.get("quick") else ""
    fig.suptitle(f"Propagation of chaos against the grid PDE{quick}", fontsize=10)
    return fig
