"""The pieces of the mean-field Langevin figure (meanfield/figures/langevin.py): the Kozachenko-Leonenko entropy
estimator against Gaussian entropies, and the self-consistent Gibbs measure against closed forms, a brute-force
2-D quadrature and the stationary state of the grid PDE (meanfield.pde, an independent solver)."""

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.figures.langevin import _gibbs_bin_masses, gibbs_plane, kl_entropy, sample_gibbs


@pytest.mark.parametrize("p", [1, 2, 3])
def test_kl_entropy_of_gaussians(p):
    rng = np.random.default_rng(p)
    A = rng.standard_normal((p, p)) + 2 * np.eye(p)
    x = rng.standard_normal((20000, p)) @ A.T
    exact = 0.5 * math.log((2 * math.pi * math.e) ** p * np.linalg.det(A @ A.T))
    assert abs(kl_entropy(x) - exact) < 0.03 * p
    with pytest.raises(ValueError, match="duplicate"):
        kl_entropy(np.vstack([x[:10], x[:1]]))


def _data():
    teacher = np.array([[1.0, 1.5], [-0.5, -0.7]])
    return mf.teacher_student(d=1, n_train=12, activation="erf", teacher=teacher, seed=0)


def test_gibbs_without_targets_is_the_gaussian_prior():
    """y = 0: the fixed point has r = 0 and mu* = N(0, tau/lambda I_2), with the closed-form entropy and F."""
    tau, lam = 0.05, 0.2
    g = gibbs_plane(np.linspace(-2, 2, 7), np.zeros(7), tau=tau, lam=lam)
    s2 = tau / lam
    assert np.max(np.abs(g["residual"])) < 1e-14 and g["risk"] < 1e-28
    assert abs(g["second_moment"] - 2 * s2) < 1e-12
    assert abs(g["entropy"] - math.log(2 * math.pi * math.e * s2)) < 1e-12
    assert abs(g["free_energy"] - (lam * s2 - tau * math.log(2 * math.pi * math.e * s2))) < 1e-12


def test_gibbs_is_self_consistent_by_brute_force_quadrature():
    """On a 2-D grid in (a, w), the density exp(-(a g(w) + lambda|theta|^2/2)/tau)/Z built from the returned
    residuals reproduces them (f - y = r) and the free energy, without the closed-form a-integral."""
    data = _data()
    X, y = data.X[:, 0], data.y
    tau, lam = 0.03, 0.1
    g = gibbs_plane(data.X, y, tau=tau, lam=lam)
    assert g["gap"] < 1e-12
    from scipy.special import erf

    a = np.linspace(-6, 6, 1201)
    w = np.linspace(-6, 6, 1201)
    h = (a[1] - a[0]) * (w[1] - w[0])
    S = erf(np.outer(w, X))
    gw = S @ g["residual"] / X.size
    logmu = -(a[:, None] * gw[None, :] + 0.5 * lam * (a[:, None] ** 2 + w[None, :] ** 2)) / tau
    logmu -= logmu.max()
    mu = np.exp(logmu)
    Z = mu.sum() * h
    mu /= Z
    logmu -= math.log(Z)
    f = ((mu * a[:, None]).sum(axis=0) * h) @ S
    np.testing.assert_allclose(f - y, g["residual"], atol=1e-9)
    second = float((mu * (a[:, None] ** 2 + w[None, :] ** 2)).sum() * h)
    entropy = float(-(mu * logmu).sum() * h)
    F = 0.5 * np.mean((f - y) ** 2) + 0.5 * lam * second - tau * entropy
    assert abs(second - g["second_moment"]) < 1e-9 and abs(entropy - g["entropy"]) < 1e-9
    assert abs(F - g["free_energy"]) < 1e-10
    # and it is the minimiser: a mixture with the prior has a larger free energy (F is convex)
    pts = sample_gibbs(g, 4000, 0)
    assert abs(np.mean(pts[:, 0] ** 2 + pts[:, 1] ** 2) - g["second_moment"]) < 0.1


def test_gibbs_is_the_stationary_state_of_the_grid_pde():
    """The PDE d_t mu = div(mu (grad V + lambda theta)) + tau Laplacian(mu), solved on grids by meanfield.pde from the
    standard normal law, reaches the Gibbs w-marginal with the scheme's second order: L1 of the cell masses
    0.0136 at 40 x 32 cells, 0.0034 at 80 x 64 (h halved: a factor 4)."""
    from meanfield import pde
    from meanfield.model import Model

    data = _data()
    tau, lam = 0.1, 0.1
    g = gibbs_plane(data.X, data.y, tau=tau, lam=lam)
    prob = pde.plane_problem((data.X, data.y), activation="erf")
    init = Model(d=1, m=1, activation="erf")
    errors = []
    for cells in ([40, 32], [80, 64]):
        grid = pde.make_grid(prob, cells, initial=init, extent=[8.0, 6.4], tolerance=1e-3)
        flow = pde.pde_flow(prob, grid, pde.PDEParams(weight_decay=lam, temperature=tau), tolerance=1e-3)
        state = flow.advance_to(flow.init(init), 40.0)
        mw = state.density.sum(axis=0)
        mw = mw / mw.sum()
        errors.append(float(np.abs(mw - _gibbs_bin_masses(g, grid.faces(1))[1:-1]).sum()))
        assert abs(flow.observe(state)["risk"] - g["risk"]) < 2e-3
    assert errors[1] < 0.006 and errors[0] / errors[1] > 3.0, errors
