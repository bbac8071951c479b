r"""Wasserstein-2 distances between particle measures, through POT.

A particle array ``theta`` of shape (m, p) stands for the empirical measure
:math:`\mu = \sum_j w_j \delta_{\theta_j}` on :math:`\mathbb R^p` (uniform weights :math:`w_j = 1/m` unless given).
Every function here returns the Wasserstein-2 distance (not its square) for the squared-Euclidean cost,

.. math:: W_2(\mu, \nu)^2 = \min_{\gamma \in \Pi(\mu, \nu)} \sum_{ij} \gamma_{ij} |x_i - y_j|^2 ,

or an approximation of it, as a :class:`W2` record ``(value, method, params, stderr, converged)`` that says how
the number was obtained. No solver result is returned silently unconverged: a solver that stops at its iteration
cap raises :class:`NotConvergedError` (``w2(method="auto")`` falls back to the certified bracket instead, and
says so in ``params["fallback_from"]``).

============================= ================================================================================
function                      what it computes
============================= ================================================================================
:func:`w2`                    dispatcher: ``method="auto"`` is exact up to :data:`AUTO_EXACT_MAX_M` particles,
                              a certified bracket :math:`L \le W_2 \le U` beyond
:func:`bracket`               certified lower (dual potentials) and upper (feasible coupling) bounds
:func:`exact`                 exact W2: assignment (equal uniform sizes), ``ot.emd`` (dense cost) or
                              ``ot.emd2_lazy`` (cost computed on the fly, O(m + n) memory)
:func:`sinkhorn`              :math:`\sqrt{\langle P_\varepsilon, C\rangle}` for the entropic plan, reg
                              relative to the median cost; log-domain iterations for small reg
:func:`sinkhorn_divergence`   debiased Sinkhorn divergence :math:`\sqrt{S_\varepsilon}`
:func:`sliced`                sliced W2 (a different, smaller distance: ``sliced <= W2``), seeded projections
:func:`subsampled`            :math:`\sqrt{\mathbb E\, W_2^2(\mu_S, \nu_S)}` over random subsets, with stderr;
                              an upper estimate (``E value^2 >= W2^2``)
:func:`identity_bound`        :math:`\sqrt{\sum_j w_j |x_j - y_j|^2} \ge W_2` for paired particles, O(mp)
:func:`gelbrich_bound`        Bures-Wasserstein distance of the moment-matched Gaussians, :math:`\le W_2`
:func:`relative_displacement` :math:`\|\theta - \theta_0\|_F / \|\theta_0\|_F`
:class:`W2ToInit`             observer: W2 to the initial particles, identity bound and displacement per
                              snapshot
============================= ================================================================================

POT is imported here only; ``import meanfield`` does not import it.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import NamedTuple

import numpy as np

from .validate import check_int, check_number
from .errors import ConfigError, MeanfieldError

__all__ = [
    "W2",
    "NotConvergedError",
    "AUTO_EXACT_MAX_M",
    "OBSERVER_EXACT_MAX_M",
    "w2",
    "exact",
    "sinkhorn",
    "sinkhorn_divergence",
    "sliced",
    "subsampled",
    "bracket",
    "identity_bound",
    "gelbrich_bound",
    "relative_displacement",
    "W2ToInit",
]

# Largest m (= max of the two sizes) for which ``w2(method="auto")`` solves the exact problem: the exact solvers
# fit the budget of about 30 s and 1 GB there. Measured with benchmarks/bench_w2_budget.py on the 2-core
# development machine while shared with other jobs (load average 3-5; see docs/performance.md), on the hardest
# case, two independent standard Gaussian clouds: p = 3, m = 4000: 8.5 s (ot.emd, 0.63 GB) / 13 s (assignment,
# 0.25 GB); p = 9, m = 4000: 32 s / 25 s; p = 3, m = 5000: 15 s / 18 s and 0.98 GB for ot.emd. So 4000. Clouds
# that moved little from each other (theta_t against theta_0) are 5-30x faster.
AUTO_EXACT_MAX_M = 4000

# Largest m for which the :class:`W2ToInit` observer solves the exact problem at every snapshot (default
# ``method="auto"``); beyond it the observer uses the paired subsampled estimate with
# ``OBSERVER_SUBSET_SIZE`` particles and ``OBSERVER_N_SUBSETS`` subsets (the same subsets at every snapshot).
# For theta_t close to theta_0 (the regime of the flows) exact W2 at m = 1000, p = 17 costs ~10 ms; see
# docs/performance.md for the overhead against an engine step.
OBSERVER_EXACT_MAX_M = 1000
OBSERVER_SUBSET_SIZE = 500
OBSERVER_N_SUBSETS = 4

# Dense cost matrices above this many entries (8 bytes each: 1 GB) are not built; exact() switches to POT's
# memory-lazy network simplex ``ot.emd2_lazy`` (cost computed on the fly, O(m + n) memory).
MAX_DENSE_ENTRIES = 125_000_000

_METHODS = ("auto", "exact", "sinkhorn", "sinkhorn_divergence", "sliced", "subsampled", "bracket", "identity_bound")
_EXACT_SOLVERS = ("auto", "assignment", "emd", "lazy")


class NotConvergedError(MeanfieldError, ArithmeticError):
    """An optimal-transport solver stopped at its iteration cap before convergence.

    Attributes
    ----------
    method : str
        The solver (``"emd"``, ``"lazy"``, ``"sinkhorn"``, ...).
    detail : str
        What was reached (cap, final marginal error) and how to fix it.
    """

    def __init__(self, method: str, detail: str):
        self.method, self.detail = method, detail
        super().__init__(f"{method} did not converge: {detail}")


class W2(NamedTuple):
    """A Wasserstein-2 value with its provenance.

    Attributes
    ----------
    value : float
        The distance (not squared), in the units of the particles.
    method : str
        ``"exact"``, ``"sinkhorn"``, ``"sinkhorn_divergence"``, ``"sliced"``, ``"subsampled"`` or
        ``"identity_bound"``.
    params : dict
        Everything needed to reproduce the number (solver, sizes, reg, seed, iterations, ...).
    stderr : float
        Standard error of ``value`` for the random estimates (``sliced``, ``subsampled``; it does not include
        their bias); for ``bracket`` the half-width of the certified bracket, so that
        ``|value - W2| <= stderr`` holds with certainty; 0.0 for exact values.
    converged : bool
        Always True for a returned value: non-convergence raises :class:`NotConvergedError`.
    lower, upper : float
        Certified bounds ``lower <= W2 <= upper``: both equal to ``value`` for ``exact``; the bracket's ends for
        ``bracket``; ``upper = value`` for ``identity_bound`` and ``sinkhorn`` (costs of feasible couplings);
        NaN where a method gives no certified bound.
    """

    value: float
    method: str
    params: dict
    stderr: float
    converged: bool
    lower: float = math.nan
    upper: float = math.nan


# ----------------------------------------------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------------------------------------------


_POT_BACKEND_KEYS = (
    "POT_BACKEND_DISABLE_PYTORCH",
    "POT_BACKEND_DISABLE_JAX",
    "POT_BACKEND_DISABLE_CUPY",
    "POT_BACKEND_DISABLE_TENSORFLOW",
)


def _ot():
    """Import POT on first use, without its torch/jax/cupy/tensorflow backends.

    ``import ot`` imports every array library it finds (10-50 s with torch and jax installed); we only pass numpy
    arrays. The POT_BACKEND_DISABLE_* variables are set with ``setdefault`` (an explicit user setting wins) and
    only if POT has not been imported yet.
    """
    import os
    import sys

    if "ot" not in sys.modules:
        for key in _POT_BACKEND_KEYS:
            os.environ.setdefault(key, "1")
    import ot

    return ot


def _check_points(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(name, x, "a real array of shape (m, p)")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ConfigError(name, f"array of shape {arr.shape}", "an array of shape (m, p) with m >= 1, p >= 1")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(name, "array with NaN or Inf entries", "finite particle coordinates")
    return arr


def _check_weights(weights, m: int, name: str):
    """Return (weights, uniform) with weights a float64 (m,) array summing to 1."""
    if weights is None:
        return np.full(m, 1.0 / m), True
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != m:
        raise ConfigError(name, f"array of shape {w.shape}", f"a 1-d array of {m} weights (one per particle)")
    if not np.all(np.isfinite(w)):
        raise ConfigError(name, "weights with NaN or Inf entries", "finite non-negative weights summing to 1")
    if np.any(w < 0):
        raise ConfigError(name, f"weights with minimum {w.min():.3g}", "non-negative weights summing to 1")
    total = w.sum()
    if abs(total - 1.0) > 1e-9:
        raise ConfigError(name, f"weights summing to {total!r}", "non-negative weights summing to 1 (within 1e-9)")
    return w, bool(np.all(w == w[0]))


def _check_pair(mu, nu, weights_mu, weights_nu):
    x = _check_points(mu, "mu")
    y = _check_points(nu, "nu")
    if x.shape[1] != y.shape[1]:
        raise ConfigError("nu", f"array of shape {y.shape}", f"points in the same dimension as mu (p = {x.shape[1]})")
    a, ua = _check_weights(weights_mu, x.shape[0], "weights_mu")
    b, ub = _check_weights(weights_nu, y.shape[0], "weights_nu")
    return x, y, a, b, ua and ub


def _sqdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean cost matrix (m, n) by the BLAS expansion, clipped at 0.

    Rounding makes entries off by ~1e-16 |x|^2; solvers only use it to find the plan, and the reported values
    are recomputed from coordinate differences on the support of the plan (:func:`_cost_on_support`).
    """
    c = -2.0 * (x @ y.T)
    c += np.einsum("ij,ij->i", x, x)[:, None]
    c += np.einsum("ij,ij->i", y, y)[None, :]
    np.maximum(c, 0.0, out=c)
    return c


def _cost_on_support(x, y, rows, cols, mass, block: int = 1 << 16) -> float:
    """sum_k mass_k |x[rows_k] - y[cols_k]|^2 from coordinate differences (exact to rounding)."""
    total = 0.0
    for s in range(0, rows.shape[0], block):
        d = x[rows[s : s + block]] - y[cols[s : s + block]]
        total += float(np.dot(mass[s : s + block], np.einsum("ij,ij->i", d, d)))
    return total


def _emd_cap(m: int, n: int) -> int:
    # The network simplex needs ~1e5 pivots already at m = n ~ 2500 (POT's default cap, 1e5, is reached at
    # m ~ 3000 in R^17 and returns a W2 off by ~1-2 %). 100 m n leaves a margin of >1000x over what we measured;
    # reaching it raises instead of returning a wrong number.
    return max(100_000, 100 * m * n)


def _sqrt(v: float) -> float:
    return math.sqrt(max(v, 0.0))


# ----------------------------------------------------------------------------------------------------------------
# closed-form quantities
# ----------------------------------------------------------------------------------------------------------------


def identity_bound(mu, nu, *, weights=None) -> float:
    r"""Cost of the identity coupling of paired particles, an upper bound on W2.

    Parameters
    ----------
    mu, nu : ndarray, shape (m, p)
        Paired particles (``nu[j]`` is the same particle as ``mu[j]`` at another time).
    weights : ndarray, shape (m,), optional
        Weights common to both measures; uniform 1/m by default.

    Returns
    -------
    float

    Notes
    -----
    .. math:: W_2(\mu, \nu) \le \Big(\sum_j w_j |x_j - y_j|^2\Big)^{1/2}

    since :math:`\sum_j w_j \delta_{(x_j, y_j)}` is a coupling of the two measures. Equality holds when every
    particle moved by less than half the distance to its nearest neighbour (then the identity is optimal).
    """
    x, y, w, _, _ = _check_pair(mu, nu, weights, weights)
    if x.shape[0] != y.shape[0]:
        raise ConfigError("nu", f"array of shape {y.shape}", f"paired particles: the shape of mu, {x.shape}")
    d = x - y
    return _sqrt(float(np.dot(w, np.einsum("ij,ij->i", d, d))))


def relative_displacement(theta, theta0) -> float:
    r"""Relative parameter displacement :math:`\|\theta - \theta_0\|_F / \|\theta_0\|_F`.

    Parameters
    ----------
    theta, theta0 : ndarray, shape (m, p)
        Current and initial particles.

    Returns
    -------
    float
        ``inf`` if ``theta0`` is zero and ``theta`` is not, 0.0 if both are.
    """
    x = _check_points(theta, "theta")
    x0 = _check_points(theta0, "theta0")
    if x.shape != x0.shape:
        raise ConfigError("theta", f"array of shape {x.shape}", f"the shape of theta0, {x0.shape}")
    num = float(np.linalg.norm(x - x0))
    den = float(np.linalg.norm(x0))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(s)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def gelbrich_bound(mu, nu, *, weights_mu=None, weights_nu=None) -> float:
    r"""Gelbrich lower bound: the Bures-Wasserstein distance of the moment-matched Gaussians.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu : ndarray, shape (m,), optional
    weights_nu : ndarray, shape (n,), optional

    Returns
    -------
    float
        A lower bound on :math:`W_2(\mu, \nu)`, equal to it for two Gaussians. O((m + n) p^2) time.

    Notes
    -----
    With means :math:`m_\mu, m_\nu` and covariances :math:`\Sigma_\mu, \Sigma_\nu`,

    .. math:: W_2^2 \ge |m_\mu - m_\nu|^2 + \operatorname{tr}\Sigma_\mu + \operatorname{tr}\Sigma_\nu
              - 2 \operatorname{tr}\big(\Sigma_\mu^{1/2} \Sigma_\nu \Sigma_\mu^{1/2}\big)^{1/2}.
    """
    x, y, a, b, _ = _check_pair(mu, nu, weights_mu, weights_nu)
    mx, my = a @ x, b @ y
    xc, yc = x - mx, y - my
    sx = np.ascontiguousarray(xc.T * a) @ xc
    sy = np.ascontiguousarray(yc.T * b) @ yc
    r = _sqrtm_psd(sx)
    cross = _sqrtm_psd(r @ sy @ r)
    v = float(np.sum((mx - my) ** 2) + np.trace(sx) + np.trace(sy) - 2.0 * np.trace(cross))
    return _sqrt(v)


# ----------------------------------------------------------------------------------------------------------------
# exact
# ----------------------------------------------------------------------------------------------------------------


def exact(mu, nu, *, weights_mu=None, weights_nu=None, solver="auto", max_iter=None) -> W2:
    r"""Exact W2 between two empirical measures.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu : ndarray, shape (m,), optional
        Non-negative, summing to 1; uniform by default.
    weights_nu : ndarray, shape (n,), optional
    solver : {"auto", "assignment", "emd", "lazy"}
        ``"assignment"``: ``scipy.optimize.linear_sum_assignment`` (only for m = n and uniform weights, where a
        permutation is optimal; the fastest, by far when the clouds are close to each other). ``"emd"``: POT's
        network simplex ``ot.emd`` on the dense cost. ``"lazy"``: ``ot.emd2_lazy``, the same solver computing
        costs on the fly with O(m + n) memory. ``"auto"``: lazy when the dense cost matrix would exceed
        ``MAX_DENSE_ENTRIES`` entries (1.25e8, 1 GB), else assignment when it applies, else emd.
    max_iter : int, optional
        Iteration cap of the network simplex; by default ``max(1e5, 100 m n)`` (POT's own default of 1e5 is
        reached near m = 3000 and silently returns a wrong value).

    Returns
    -------
    W2
        ``method="exact"``, ``stderr=0``; ``params`` holds the solver and sizes.

    Accuracy
    --------
    Exact up to rounding: relative ~1e-13 (the plan is optimal; its cost is recomputed from coordinate
    differences). ``lower = upper = value``.

    Raises
    ------
    NotConvergedError
        The network simplex stopped at ``max_iter`` (POT only warns).

    Notes
    -----
    The solvers find the optimal plan :math:`\gamma` from the cost matrix; the value
    :math:`\big(\sum_{ij} \gamma_{ij} |x_i - y_j|^2\big)^{1/2}` is then recomputed from coordinate differences on
    the support of :math:`\gamma` (at most m + n - 1 pairs), so that a translated cloud gives :math:`|v|` and a
    permuted cloud 0 to rounding.
    """
    x, y, a, b, uniform = _check_pair(mu, nu, weights_mu, weights_nu)
    if solver not in _EXACT_SOLVERS:
        raise ConfigError("solver", solver, "one of " + ", ".join(_EXACT_SOLVERS))
    m, n = x.shape[0], y.shape[0]
    square_uniform = uniform and m == n
    if solver == "auto":
        if m * n > MAX_DENSE_ENTRIES:
            solver = "lazy"
        elif square_uniform:
            solver = "assignment"
        else:
            solver = "emd"
    elif solver == "assignment" and not square_uniform:
        raise ConfigError("solver", solver, "'emd' or 'lazy' (the assignment solver needs m = n, uniform weights)")
    cap = _emd_cap(m, n) if max_iter is None else check_int("max_iter", max_iter, low=1)
    params = {"solver": solver, "m": m, "n": n, "p": x.shape[1]}

    if solver == "assignment":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(_sqdist(x, y))
        value = _sqrt(_cost_on_support(x, y, rows, cols, np.full(m, 1.0 / m)))
        return W2(value, "exact", params, 0.0, True, value, value)

    ot = _ot()
    params["max_iter"] = cap
    with warnings.catch_warnings():
        # POT warns (and returns a wrong number) when the cap is reached; we check the result code instead.
        warnings.simplefilter("ignore", UserWarning)
        if solver == "emd":
            plan, log = ot.emd(a, b, _sqdist(x, y), numItermax=cap, log=True)
            code = int(log["result_code"])
            rows, cols = np.nonzero(plan)
            mass = plan[rows, cols]
        else:
            _, log = ot.emd2_lazy(x, y, a, b, metric="sqeuclidean", numItermax=cap, log=True, return_matrix=True)
            code = int(log["result_code"])
            g = log["G"].tocoo()
            keep = g.data > 0
            rows, cols, mass = g.row[keep], g.col[keep], g.data[keep]
    if code != 1:
        reasons = {0: "problem infeasible", 2: "problem unbounded", 3: f"iteration cap max_iter = {cap} reached"}
        raise NotConvergedError(
            solver, reasons.get(code, f"result code {code}") + "; raise max_iter or use w2(method='subsampled')"
        )
    value = _sqrt(_cost_on_support(x, y, rows.astype(np.intp), cols.astype(np.intp), np.asarray(mass, dtype=np.float64)))
    return W2(value, "exact", params, 0.0, True, value, value)


# ----------------------------------------------------------------------------------------------------------------
# entropic
# ----------------------------------------------------------------------------------------------------------------


def _entropic_plan(a, b, cost, reg_abs, log_domain, max_iter, tol):
    ot = _ot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        plan, log = ot.sinkhorn(
            a,
            b,
            cost,
            reg_abs,
            # POT's absorption-stabilised "sinkhorn_stabilized" is faster per iteration but loses the plan's mass
            # (to ~1e-6) and never converges on >= 1001 independent points in R^17 at reg = 0.05, where the
            # log-domain "sinkhorn_log" converges in ~70 iterations (tests/test_transport.py)
            method="sinkhorn_log" if log_domain else "sinkhorn",
            numItermax=max_iter,
            stopThr=tol,
            log=True,
        )
    err = float(log["err"][-1]) if len(log["err"]) else math.nan
    converged = bool(math.isfinite(err) and err < tol and np.all(np.isfinite(plan)))
    niter = int(log["n_iter"] if "n_iter" in log else log["niter"])
    return plan, converged, niter, err


def _symmetric_plan(a, cost, reg_abs, max_iter, tol):
    """Entropic self-transport plan by the symmetric log-domain iteration f <- (f + T f) / 2 (Feydy et al.).

    The plain alternating Sinkhorn converges very slowly on the symmetric problem OT_eps(mu, mu); the averaged
    update converges in tens of iterations.
    """
    from scipy.special import logsumexp

    loga = np.log(a)
    f = np.zeros_like(a)
    err = math.inf
    for it in range(1, max_iter + 1):
        tf = -reg_abs * logsumexp((f[None, :] - cost) / reg_abs + loga[None, :], axis=1)
        f = 0.5 * (f + tf)
        if it % 10 == 0 or it == max_iter:
            plan = np.exp((f[:, None] + f[None, :] - cost) / reg_abs + loga[:, None] + loga[None, :])
            err = float(np.linalg.norm(plan.sum(axis=1) - a))
            if err < tol:
                return plan, True, it, err
    return plan, False, max_iter, err


def _sinkhorn_setup(x, y, reg, log_domain, max_iter, tol):
    reg = check_number("reg", reg, low=0, low_open=True)
    tol = check_number("tol", tol, low=0, low_open=True)
    cost = _sqdist(x, y)
    median = float(np.median(cost))
    if median == 0.0:
        median = float(cost.max()) or 1.0
    reg_abs = reg * median
    if log_domain is None:
        # The scaling iterations underflow once exp(-C/eps) does: use the log domain for small eps.
        log_domain = bool(cost.max() / reg_abs > 50.0)
    cap = 10_000 if max_iter is None else check_int("max_iter", max_iter, low=1)
    params = {"reg": reg, "reg_abs": reg_abs, "median_cost": median, "log_domain": bool(log_domain),
              "max_iter": cap, "tol": tol, "m": x.shape[0], "n": y.shape[0], "p": x.shape[1]}
    return cost, reg_abs, bool(log_domain), cap, tol, params


def _raise_sinkhorn(params, niter, err, which="sinkhorn"):
    raise NotConvergedError(
        which,
        f"marginal error {err:.3g} > tol = {params['tol']:g} after {niter} iterations (max_iter = "
        f"{params['max_iter']}, reg = {params['reg']:g} x median cost); raise max_iter or reg, or use exact",
    )


def sinkhorn(mu, nu, *, weights_mu=None, weights_nu=None, reg=0.05, log_domain=None, max_iter=None, tol=1e-9) -> W2:
    r"""Entropic approximation of W2: the transport cost of the Sinkhorn plan.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
    reg : float
        Regularisation **relative to the median of the cost matrix**: :math:`\varepsilon = \text{reg} \times
        \operatorname{median}_{ij} |x_i - y_j|^2`.
    log_domain : bool, optional
        Log-domain iterations (POT's ``sinkhorn_log``; its absorption-stabilised ``sinkhorn_stabilized`` is not
        used: it loses the plan's mass and never converges on ~1000 independent points in R^17); by default
        when :math:`\max C / \varepsilon > 50`, below which plain scaling iterations do not underflow.
    max_iter : int
        Cap on Sinkhorn iterations (default 10000). Iterations grow fast as reg decreases (p = 17, m = 300: 20
        at reg = 0.1, 160 at 0.03, ~4e4 at 0.01).
    tol : float
        Convergence threshold on the L2 marginal error of the plan.

    Returns
    -------
    W2
        ``value`` :math:`= \langle P_\varepsilon, C\rangle^{1/2} \ge W_2` (the plan is feasible), decreasing to
        :math:`W_2` as reg -> 0. ``params`` holds reg, the absolute eps, the iterations and the final error.

    Raises
    ------
    NotConvergedError
        The marginal error is still above ``tol`` at ``max_iter``.
    """
    x, y, a, b, _ = _check_pair(mu, nu, weights_mu, weights_nu)
    cost, reg_abs, log_domain, cap, tol, params = _sinkhorn_setup(x, y, reg, log_domain, max_iter, tol)
    plan, ok, niter, err = _entropic_plan(a, b, cost, reg_abs, log_domain, cap, tol)
    params.update(niter=niter, err=err)
    if not ok:
        _raise_sinkhorn(params, niter, err)
    rows, cols = np.nonzero(plan)
    value = _sqrt(_cost_on_support(x, y, rows, cols, plan[rows, cols]))
    return W2(value, "sinkhorn", params, 0.0, True)


def _entropic_objective(x, y, a, b, reg_abs, log_domain, cap, tol, params, tag):
    cost = _sqdist(x, y)
    if tag == "xy":
        plan, ok, niter, err = _entropic_plan(a, b, cost, reg_abs, log_domain, cap, tol)
    else:
        plan, ok, niter, err = _symmetric_plan(a, cost, reg_abs, cap, tol)
    params[f"niter_{tag}"], params[f"err_{tag}"] = niter, err
    if not ok:
        _raise_sinkhorn(params, niter, err, f"sinkhorn ({tag[0]}-{tag[1]} term of the divergence)")
    from scipy.special import xlogy

    ratio = plan / np.outer(a, b)
    kl = float(np.sum(xlogy(plan, np.where(plan > 0, ratio, 1.0))))
    return float(np.sum(plan * cost)) + reg_abs * kl


def sinkhorn_divergence(
    mu, nu, *, weights_mu=None, weights_nu=None, reg=0.05, log_domain=None, max_iter=None, tol=1e-9
) -> W2:
    r"""Debiased Sinkhorn divergence, the square root of :math:`S_\varepsilon`.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
    reg : float
        Regularisation relative to the median of the cross cost matrix :math:`|x_i - y_j|^2`; the same absolute
        :math:`\varepsilon` is used for the three problems.
    log_domain, max_iter, tol
        As in :func:`sinkhorn`.

    Returns
    -------
    W2
        ``value`` :math:`= \max(S_\varepsilon, 0)^{1/2}`; 0 for :math:`\mu = \nu`, tends to :math:`W_2` as reg -> 0.

    Notes
    -----
    .. math:: S_\varepsilon(\mu, \nu) = OT_\varepsilon(\mu, \nu)
              - \tfrac12 OT_\varepsilon(\mu, \mu) - \tfrac12 OT_\varepsilon(\nu, \nu),\qquad
              OT_\varepsilon = \min_P \langle P, C\rangle + \varepsilon\, \mathrm{KL}(P \,|\, a \otimes b)

    (Feydy et al. 2019), each term computed from its converged Sinkhorn plan.
    """
    x, y, a, b, _ = _check_pair(mu, nu, weights_mu, weights_nu)
    _, reg_abs, log_domain, cap, tol, params = _sinkhorn_setup(x, y, reg, log_domain, max_iter, tol)
    oxy = _entropic_objective(x, y, a, b, reg_abs, log_domain, cap, tol, params, "xy")
    oxx = _entropic_objective(x, x, a, a, reg_abs, log_domain, cap, tol, params, "xx")
    oyy = _entropic_objective(y, y, b, b, reg_abs, log_domain, cap, tol, params, "yy")
    s = oxy - 0.5 * (oxx + oyy)
    params["divergence"] = s
    return W2(_sqrt(s), "sinkhorn_divergence", params, 0.0, True)


# ----------------------------------------------------------------------------------------------------------------
# sliced
# ----------------------------------------------------------------------------------------------------------------


def sliced(mu, nu, *, weights_mu=None, weights_nu=None, n_projections=200, seed=0, chunk=None) -> W2:
    r"""Sliced W2: root mean square of the 1-d W2 over random directions (``ot.sliced_wasserstein_distance``).

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
    n_projections : int
        Number of directions, drawn uniformly on the sphere from ``numpy.random.default_rng(seed)``.
    seed : int
    chunk : int, optional
        Directions per POT call; by default ``256 MiB // (16 (m + n))``. POT's 1-d solver allocates several
        times the projected data: measured peak 1.6 GB for m = n = 1e5 with 200 directions (3 calls).

    Returns
    -------
    W2
        ``value`` :math:`SW_2 = (\mathbb E_\omega W_2^2(\omega_\#\mu, \omega_\#\nu))^{1/2}` estimated with
        ``n_projections`` directions, ``stderr`` its Monte-Carlo standard error (delta method).

    Notes
    -----
    The sliced distance is a different, smaller distance: :math:`SW_2 \le W_2` (projections are 1-Lipschitz); for a
    translation by :math:`v`, :math:`SW_2 = |v|/\sqrt p`. It is reported as such and never used by
    ``w2(method="auto")`` as an estimate of W2.
    """
    x, y, a, b, _ = _check_pair(mu, nu, weights_mu, weights_nu)
    n_projections = check_int("n_projections", n_projections, low=2)
    seed = check_int("seed", seed, low=0)
    p = x.shape[1]
    if chunk is None:
        chunk = max(1, min(n_projections, (256 << 20) // (16 * (x.shape[0] + y.shape[0]))))
    chunk = check_int("chunk", chunk, low=1)
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((p, n_projections))
    proj /= np.linalg.norm(proj, axis=0, keepdims=True)
    ot = _ot()
    per = np.empty(n_projections)
    for s in range(0, n_projections, chunk):
        _, log = ot.sliced_wasserstein_distance(x, y, a, b, projections=proj[:, s : s + chunk], p=2, log=True)
        per[s : s + chunk] = np.asarray(log["projected_emds"])
    mean_sq = float(per.mean())
    value = _sqrt(mean_sq)
    se_sq = float(per.std(ddof=1)) / math.sqrt(n_projections)
    stderr = se_sq / (2.0 * value) if value > 0 else 0.0
    params = {"n_projections": n_projections, "seed": seed, "m": x.shape[0], "n": y.shape[0], "p": p}
    return W2(value, "sliced", params, stderr, True)


# ----------------------------------------------------------------------------------------------------------------
# subsampled
# ----------------------------------------------------------------------------------------------------------------


def subsampled(
    mu, nu, *, weights_mu=None, weights_nu=None, size=1000, n_subsets=10, paired=None, seed=0, solver="auto"
) -> W2:
    r"""Subsampled exact W2 for large measures, with its standard error.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
        With weights, subsets are drawn i.i.d. with these probabilities (with replacement); without, uniformly
        without replacement.
    size : int
        Points per subset ``s`` (capped at the size of each measure).
    n_subsets : int
        Number of subsets ``k`` (>= 2 for a standard error).
    paired : bool, optional
        Draw the same indices in both measures (requires m = n and uniform weights). Default: True when m = n and
        both are uniform. For particles followed in time (theta_t against theta_0) pairing removes most of the
        sampling bias; for unrelated clouds it does no harm.
    seed : int
        Seed of ``numpy.random.default_rng`` for the subsets.
    solver : str
        Exact solver on each subset (see :func:`exact`).

    Returns
    -------
    W2
        ``value`` :math:`= (\frac1k \sum_i W_2^2(\mu_{S_i}, \nu_{T_i}))^{1/2}`, ``stderr`` from the spread of the k
        squared values (delta method).

    Notes
    -----
    The subsampled empirical measures average back to the full ones, :math:`\mathbb E\,\mu_S = \mu` and
    :math:`\mathbb E\,\nu_T = \nu`, so by joint convexity of :math:`W_2^2` the estimate is **biased upwards**:
    :math:`\mathbb E\,\text{value}^2 \ge W_2^2(\mu, \nu)`. The standard error does not include this bias. The bias
    vanishes when the identity coupling is optimal for paired particles (small displacements); for unpaired
    clouds in dimension p it decays slowly, like :math:`s^{-1/p}`. A lower bound to go with it is
    :func:`gelbrich_bound` (or :func:`sliced`).
    """
    x, y, a, b, uniform = _check_pair(mu, nu, weights_mu, weights_nu)
    size = check_int("size", size, low=1)
    n_subsets = check_int("n_subsets", n_subsets, low=2)
    seed = check_int("seed", seed, low=0)
    m, n = x.shape[0], y.shape[0]
    can_pair = uniform and m == n
    if paired is None:
        paired = can_pair
    elif paired and not can_pair:
        raise ConfigError("paired", paired, "False (pairing needs m = n and uniform weights)")
    ua = weights_mu is None or np.all(a == a[0])
    ub = weights_nu is None or np.all(b == b[0])
    rng = np.random.default_rng(seed)
    sx, sy = min(size, m), min(size, n)

    def draw(count, k, w, unif):
        if unif:
            return rng.choice(count, size=k, replace=False) if k < count else np.arange(count)
        return rng.choice(count, size=k, replace=True, p=w)

    sq = np.empty(n_subsets)
    used = None
    for i in range(n_subsets):
        ix = draw(m, sx, a, ua)
        iy = ix if paired else draw(n, sy, b, ub)
        r = exact(x[ix], y[iy], solver=solver)
        used = r.params["solver"]
        sq[i] = r.value**2
    mean_sq = float(sq.mean())
    value = _sqrt(mean_sq)
    se_sq = float(sq.std(ddof=1)) / math.sqrt(n_subsets)
    stderr = se_sq / (2.0 * value) if value > 0 else 0.0
    params = {"size": sx if sx == sy else (sx, sy), "n_subsets": n_subsets, "paired": bool(paired), "seed": seed,
              "solver": used, "m": m, "n": n, "p": x.shape[1], "bias": "upward: E[value^2] >= W2^2"}
    return W2(value, "subsampled", params, stderr, True)


# ----------------------------------------------------------------------------------------------------------------
# certified bracket
# ----------------------------------------------------------------------------------------------------------------


def _c_transform(x, y, g, block):
    """f_i = min_j (|x_i - y_j|^2 - g_j) over all j, in blocks of rows (O(block n) memory)."""
    yy = np.einsum("ij,ij->i", y, y)
    f = np.empty(x.shape[0])
    for s in range(0, x.shape[0], block):
        xb = x[s : s + block]
        c = -2.0 * (xb @ y.T)
        c += np.einsum("ij,ij->i", xb, xb)[:, None]
        c += yy[None, :]
        c -= g[None, :]
        f[s : s + block] = c.min(axis=1)
    return f


def _candidates(x, y, f, g, k, block):
    """For each row i, the k columns j of smallest reduced cost |x_i - y_j|^2 - f_i - g_j (>= 0)."""
    yy = np.einsum("ij,ij->i", y, y)
    out = np.empty((x.shape[0], k), dtype=np.intp)
    for s in range(0, x.shape[0], block):
        xb = x[s : s + block]
        c = -2.0 * (xb @ y.T)
        c += (np.einsum("ij,ij->i", xb, xb) - f[s : s + block])[:, None]
        c += (yy - g)[None, :]
        out[s : s + block] = np.argpartition(c, k - 1, axis=1)[:, :k]
    return out


def bracket(mu, nu, *, weights_mu=None, weights_nu=None, size=2000, candidates=32, seed=0) -> W2:
    r"""Certified bounds :math:`L \le W_2 \le U` for measures too large for the exact solvers.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
    nu : ndarray, shape (n, p)
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
    size : int
        Points of the subsample whose exact dual potentials seed the lower bound.
    candidates : int
        Edges per point kept for the upper bound's sparse assignment (equal uniform sizes).
    seed : int
        Seed of ``numpy.random.default_rng`` for the subsample.

    Returns
    -------
    W2
        ``method="bracket"``, ``lower`` = L, ``upper`` = U, ``value`` = (L + U)/2 and ``stderr`` = (U - L)/2,
        so that ``|value - W2| <= stderr`` holds with certainty (up to rounding, ~1e-14 relative).
        ``params`` records the sizes, the candidate count and which upper bound was used.

    Notes
    -----
    **Lower bound** (Kantorovich duality): any potentials with :math:`f_i + g_j \le |x_i - y_j|^2` give
    :math:`\sum_i a_i f_i + \sum_j b_j g_j \le W_2^2`. The dual potentials of the exact problem between two
    subsamples of ``size`` points are extended to all points by c-transforms,
    :math:`g_j = \min_{i \in S}(C_{ij} - u_i)`, :math:`f_i = \min_j (C_{ij} - g_j)`,
    :math:`g_j = \min_i (C_{ij} - f_i)` (each pass O(m n p) time in blocks, O((m + n) p) memory), which makes
    them feasible for the full problem; a margin of 1e-12 times the largest cost covers rounding.
    The result is also never below :func:`gelbrich_bound`.

    **Upper bound**: the cost of a feasible coupling. With equal sizes and uniform weights, the optimal
    permutation among the ``candidates`` smallest reduced costs :math:`C_{ij} - f_i - g_j` of every row (where
    the optimal plan lives when the potentials are good), plus the edges of the monotone pairing along the
    first principal axis so that a permutation always exists (``scipy.sparse.csgraph.
    min_weight_full_bipartite_matching``). Otherwise the monotone (quantile) coupling along that axis, which is
    feasible for any weights. Its cost is recomputed from coordinate differences.

    Both bounds hold by construction; tests/test_transport.py checks ``lower <= exact <= upper`` on cases where
    the exact solver is affordable. The width depends on the case (m = 2000, 1000-point subsample,
    docs/performance.md): 1e-9 relative for moved clouds in R^17 (theta_t against theta_0), 3 % for
    independent clouds in R^17, 30-40 % in R^3, where the subsample's potentials extend poorly.
    """
    x, y, a, b, uniform = _check_pair(mu, nu, weights_mu, weights_nu)
    size = check_int("size", size, low=2)
    candidates = check_int("candidates", candidates, low=1)
    seed = check_int("seed", seed, low=0)
    m, n = x.shape[0], y.shape[0]
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ix = rng.choice(m, size=min(size, m), replace=False, p=None if uniform else a) if size < m else np.arange(m)
    iy = rng.choice(n, size=min(size, n), replace=False, p=None if uniform else b) if size < n else np.arange(n)
    ot = _ot()
    sa, sb = np.full(ix.shape[0], 1.0 / ix.shape[0]), np.full(iy.shape[0], 1.0 / iy.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, log = ot.emd(sa, sb, _sqdist(x[ix], y[iy]), numItermax=_emd_cap(ix.shape[0], iy.shape[0]), log=True)
    block = max(1, (1 << 22) // max(n, m))
    g = _c_transform(y, x[ix], np.asarray(log["u"], dtype=np.float64), block)  # g_j = min_{i in S} C_ij - u_i
    f = _c_transform(x, y, g, block)
    g = _c_transform(y, x, f, block)
    cmax = float(np.max(np.einsum("ij,ij->i", x, x))) + float(np.max(np.einsum("ij,ij->i", y, y)))
    lower_sq = float(a @ f + b @ g) - 1e-12 * 4.0 * cmax
    lower = max(_sqrt(lower_sq), gelbrich_bound(x, y, weights_mu=weights_mu, weights_nu=weights_nu))
    # monotone coupling along the first principal axis of the pooled cloud (feasible for any weights)
    pooled = np.vstack([x, y])
    axis = np.linalg.svd(pooled - pooled.mean(0), full_matrices=False)[2][0]
    ox, oy = np.argsort(x @ axis, kind="stable"), np.argsort(y @ axis, kind="stable")
    if uniform and m == n:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import min_weight_full_bipartite_matching

        cand = _candidates(x, y, f, g, min(candidates, n), block)
        rows = np.concatenate([np.repeat(np.arange(m), cand.shape[1]), ox])
        cols = np.concatenate([cand.reshape(-1), oy])
        d = x[rows] - y[cols]
        w = np.einsum("ij,ij->i", d, d) + 1.0  # + 1: every listed edge has a non-zero weight (same argmin)
        graph = coo_matrix((w, (rows, cols)), shape=(m, n)).tocsr()  # duplicates summed: drop them first
        key = np.unique(rows * n + cols, return_index=True)[1]
        graph = coo_matrix((w[key], (rows[key], cols[key])), shape=(m, n)).tocsr()
        r, c = min_weight_full_bipartite_matching(graph)
        upper = _sqrt(_cost_on_support(x, y, r, c, np.full(m, 1.0 / m)))
        how = "sparse assignment"
        # Potentials of that assignment (difference constraints v_j - v_pi(i) <= C_ij - C_i,pi(i) on the candidate
        # edges, by Bellman-Ford), made feasible for all pairs by c-transforms: usually a much better lower bound.
        pi = np.empty(m, dtype=np.intp)
        pi[r] = c
        gr, gc = graph.nonzero()
        wgt = np.asarray(graph[gr, gc]).reshape(-1) - 1.0
        w_edge = wgt - (np.einsum("ij,ij->i", x[gr] - y[pi[gr]], x[gr] - y[pi[gr]]))
        src, dst = pi[gr], gc
        v = np.zeros(n)
        for _ in range(min(n, 2000)):
            new = v.copy()
            np.minimum.at(new, dst, v[src] + w_edge)
            if np.max(v - new) <= 1e-13 * cmax:
                break
            v = new
        # whether or not it settled, the c-transforms below make any v feasible: the bound stays certified
        if v is not None:
            f2 = _c_transform(x, y, -v, block)
            g2 = _c_transform(y, x, f2, block)
            lower2 = _sqrt(float(a @ f2 + b @ g2) - 1e-12 * 4.0 * cmax)
            lower = max(lower, lower2)
    else:
        # quantile coupling of the two sorted weight sequences
        ca, cb = np.cumsum(a[ox]), np.cumsum(b[oy])
        ts = np.unique(np.concatenate([[0.0], ca, cb]))
        ts = ts[ts <= 1.0]
        mid = 0.5 * (ts[:-1] + ts[1:])
        r = ox[np.minimum(np.searchsorted(ca, mid), m - 1)]
        c = oy[np.minimum(np.searchsorted(cb, mid), n - 1)]
        upper = _sqrt(_cost_on_support(x, y, r, c, np.diff(ts)))
        how = "monotone coupling along the first principal axis"
    upper = max(upper, lower)
    params = {"size": int(ix.shape[0]), "candidates": int(candidates), "seed": seed, "m": m, "n": n,
              "p": x.shape[1], "upper_bound": how, "seconds": time.perf_counter() - t0}
    return W2(0.5 * (lower + upper), "bracket", params, 0.5 * (upper - lower), True, lower, upper)


# ----------------------------------------------------------------------------------------------------------------
# dispatcher
# ----------------------------------------------------------------------------------------------------------------


def w2(mu, nu, *, weights_mu=None, weights_nu=None, method="auto", seed=0, **params) -> W2:
    r"""Wasserstein-2 distance between two particle measures, by the method asked for or chosen.

    Parameters
    ----------
    mu : ndarray, shape (m, p)
        Particles (rows) of the first measure, e.g. theta_t in the layout [a, w_1..w_d, (b)].
    nu : ndarray, shape (n, p)
        Particles of the second measure (theta_0, another run, the teacher's neurons, ...).
    weights_mu, weights_nu : ndarray, shape (m,) / (n,), optional
        Non-negative weights summing to 1 (e.g. a teacher's ``|a_k| / sum |a|``); uniform by default.
    method : str
        One of ``"auto"``, ``"exact"``, ``"sinkhorn"``, ``"sinkhorn_divergence"``, ``"sliced"``, ``"subsampled"``,
        ``"bracket"``, ``"identity_bound"``.
        ``"auto"``: :func:`exact` when ``max(m, n) <= AUTO_EXACT_MAX_M`` (4000: at most ~30 s and 1 GB on the
        loaded 2-core development machine, p <= 17), else :func:`bracket`, whose ``lower <= W2 <= upper`` is certified
        and whose ``stderr`` is the bracket's half-width (``|value - W2| <= stderr``); if the exact solver fails
        to converge, the bracket is returned with ``params["fallback_from"]``.
    seed : int
        Seed of the random methods (sliced, subsampled).
    **params
        Passed to the chosen function (not allowed with ``method="auto"``).

    Returns
    -------
    W2
        ``(value, method, params, stderr, converged)``; ``method`` is the one actually used.
    """
    if method not in _METHODS:
        raise ConfigError("method", method, "one of " + ", ".join(_METHODS))
    kw = dict(weights_mu=weights_mu, weights_nu=weights_nu)
    if method == "auto":
        if params:
            raise ConfigError("params", sorted(params), "no extra parameters with method='auto' (name a method)")
        x, y, _, _, _ = _check_pair(mu, nu, weights_mu, weights_nu)
        if max(x.shape[0], y.shape[0]) <= AUTO_EXACT_MAX_M:
            try:
                return exact(x, y, **kw)
            except NotConvergedError as err:
                r = bracket(x, y, **kw, size=min(2000, AUTO_EXACT_MAX_M // 2), seed=seed)
                return r._replace(params={**r.params, "fallback_from": "exact", "fallback_reason": str(err)})
        return bracket(x, y, **kw, size=min(2000, AUTO_EXACT_MAX_M // 2), seed=seed)
    if method == "exact":
        return exact(mu, nu, **kw, **params)
    if method == "sinkhorn":
        return sinkhorn(mu, nu, **kw, **params)
    if method == "sinkhorn_divergence":
        return sinkhorn_divergence(mu, nu, **kw, **params)
    if method == "sliced":
        return sliced(mu, nu, **kw, seed=seed, **params)
    if method == "subsampled":
        return subsampled(mu, nu, **kw, seed=seed, **params)
    if method == "bracket":
        return bracket(mu, nu, **kw, seed=seed, **params)
    # identity_bound
    if weights_nu is not None and weights_mu is None:
        raise ConfigError("weights_nu", "given", "weights_mu (the identity coupling uses one set of weights)")
    if weights_mu is not None and weights_nu is not None and not np.array_equal(weights_mu, weights_nu):
        raise ConfigError("weights_nu", "different from weights_mu", "the same weights as mu for paired particles")
    ib = identity_bound(mu, nu, weights=weights_mu)
    return W2(ib, "identity_bound", dict(params), 0.0, True, math.nan, ib)


# ----------------------------------------------------------------------------------------------------------------
# observer
# ----------------------------------------------------------------------------------------------------------------


class W2ToInit:
    r"""Observer: Wasserstein-2 distance of the particle measure to its initialisation, at every snapshot.

    Parameters
    ----------
    theta0 : ndarray, shape (m, p)
        Initial particles (copied).
    method : {"auto", "exact", "subsampled", "sinkhorn", "sinkhorn_divergence", "sliced", "none"}
        ``"auto"`` (default): exact when ``m <= OBSERVER_EXACT_MAX_M`` (1000), else the paired subsampled
        estimate with ``OBSERVER_N_SUBSETS`` subsets of ``OBSERVER_SUBSET_SIZE`` particles, the same subsets at
        every snapshot. ``"none"`` records only the O(mp) quantities.
    seed : int
        Seed of the random methods.
    **params
        Passed to the method (e.g. ``size=``, ``n_subsets=`` for subsampled, ``reg=`` for sinkhorn).

    Attributes
    ----------
    method : str
        The method used at every call (fixed at construction).
    params : dict
        Its parameters.

    Notes
    -----
    A call ``obs(theta)`` returns the :class:`W2` record of :math:`W_2(\mu_\theta, \mu_{\theta_0})` (the O(mp)
    displacement and identity-coupling bound are :func:`relative_displacement` and :func:`identity_bound`, which
    :func:`meanfield.observers.motion` records). If the exact solver fails to converge at some snapshot, that
    snapshot falls back to the subsampled estimate and says so in ``params``.
    """

    _OBS_METHODS = ("auto", "exact", "subsampled", "sinkhorn", "sinkhorn_divergence", "sliced", "none")

    def __init__(self, theta0, *, method="auto", seed=0, **params):
        self.theta0 = _check_points(theta0, "theta0").copy()
        if method not in self._OBS_METHODS:
            raise ConfigError("method", method, "one of " + ", ".join(self._OBS_METHODS))
        m = self.theta0.shape[0]
        if method == "auto":
            if params:
                raise ConfigError("params", sorted(params), "no extra parameters with method='auto'")
            if m <= OBSERVER_EXACT_MAX_M:
                method = "exact"
            else:
                method = "subsampled"
                params = {"size": OBSERVER_SUBSET_SIZE, "n_subsets": OBSERVER_N_SUBSETS, "paired": True}
        if method in ("sliced", "subsampled"):
            params = {**params, "seed": seed}
        self.method, self.params = method, dict(params)
        self.seconds = 0.0  # cumulative time spent in calls (for overhead reports)

    def __call__(self, theta) -> W2:
        t0 = time.perf_counter()
        x = _check_points(theta, "theta")
        if x.shape != self.theta0.shape:
            raise ConfigError("theta", f"array of shape {x.shape}", f"the shape of theta0, {self.theta0.shape}")
        if self.method == "none":
            r = W2(math.nan, "none", {}, math.nan, True)
        elif self.method == "exact":
            try:
                r = exact(x, self.theta0, **self.params)
            except NotConvergedError as err:
                r = subsampled(x, self.theta0, size=OBSERVER_SUBSET_SIZE, n_subsets=OBSERVER_N_SUBSETS, paired=True)
                r = r._replace(params={**r.params, "fallback_from": "exact", "fallback_reason": str(err)})
        else:
            r = w2(x, self.theta0, method=self.method, **self.params)
        self.seconds += time.perf_counter() - t0
        return r
