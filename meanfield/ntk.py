r"""Neural tangent kernels of the two-layer network: empirical (any particle state) and analytic (infinite width).

The kernel is normalised so that gradient flow under the core conventions (any scaling preset, per-layer
multipliers included) moves the outputs exactly by

.. math:: \frac{d f_t(x)}{dt} = -\frac1n \sum_{i=1}^n \Theta_t(x, x_i)\,(f_t(x_i) - y_i),

.. math:: \Theta_t(x, x') = \eta\, m^{\beta - 2\alpha} \sum_{j=1}^m
          \nabla_\theta\varphi(\theta_j; x)^\top D\, \nabla_\theta\varphi(\theta_j; x'),
          \qquad \varphi(\theta; x) = a\,\sigma(w\cdot x/\sqrt d + b)

(the output scale :math:`c` cancels). For the ``mean_field``, ``ntk`` and ``lazy`` presets
:math:`\beta - 2\alpha = -1`, so :math:`\Theta` is an average over particles and tends, at initialisation, to
the same deterministic kernel :math:`\Theta^*` given by :func:`analytic_ntk`. See docs/conventions.md.

Functions
---------
empirical_ntk
    :math:`\Theta` of a particle state on two input sets, from two Gram-type products (no Jacobian).
nngp, analytic_ntk
    Infinite-width kernels of the initialisation distribution: closed forms (identity, relu, erf, quadratic),
    Gauss-Hermite quadrature otherwise, and the depth-L fully connected recursion.
gaussian_expectations
    :math:`E[\sigma(u)\sigma(v)]` and :math:`E[\sigma'(u)\sigma'(v)]` for a centred Gaussian pair.
kernel_change, kernel_alignment, lambda_min, kernel_observables
    Observables of the kernel along a particle trajectory.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._kernels import ntk as _k
from ._kernels import population as _kp
from .activations import Activation, get_activation
from .validate import check_choice, check_int, check_number
from .errors import ConfigError
from .scaling import get_scaling

__all__ = [
    "empirical_ntk",
    "model_ntk",
    "nngp",
    "analytic_ntk",
    "gaussian_expectations",
    "CLOSED_FORMS",
    "kernel_change",
    "kernel_alignment",
    "lambda_min",
    "KernelObservables",
    "kernel_observables",
]

_SLAB_ELEMENTS = 1 << 24  # elements of one (block, m) slab: 128 MiB of float64 (docs/performance.md: larger
# blocks make larger, more efficient Gram products; 2^21 was 2.2x slower at n = 2048, m = 16384)
_NEGLIGIBLE_WEIGHT = 1e-20  # Gauss-Hermite (products of) weights below this are dropped


# ----------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------


def _layer_lr(layer_lr):
    try:
        vals = tuple(layer_lr)
    except TypeError:
        raise ConfigError("layer_lr", layer_lr, "three non-negative numbers (eta_a, eta_w, eta_b)") from None
    if len(vals) != 3:
        raise ConfigError("layer_lr", layer_lr, "three non-negative numbers (eta_a, eta_w, eta_b)")
    return tuple(check_number("layer_lr", v, low=0, allowed="three non-negative numbers (eta_a, eta_w, eta_b)")
                 for v in vals)


def _inputs(X, key, d=None):
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(key, X, "a real array of shape (n, d)") from None
    if arr.ndim == 1 and d is not None and arr.shape[0] == d:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ConfigError(key, getattr(X, "shape", X), "a real array of shape (n, d) with d >= 1")
    if d is not None and arr.shape[1] != d:
        raise ConfigError(key, arr.shape, f"an array of shape (n, {d}) matching the particles' input dimension")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(key, "non-finite entries", "finite inputs")
    return np.ascontiguousarray(arr)


def _particles(theta, bias):
    try:
        arr = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("theta", theta, "a real array of shape (m, p)") from None
    need = 3 if bias else 2
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < need:
        raise ConfigError(
            "theta", getattr(arr, "shape", theta), f"an array of shape (m, p) with m >= 1, p = 1 + d{' + 1' if bias else ''}"
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError("theta", "non-finite entries", "finite particles")
    return arr


# ----------------------------------------------------------------------------------------------------------
# elementwise activation evaluation (built-in codes in numba; custom activations through a ufunc)
# ----------------------------------------------------------------------------------------------------------

_CUSTOM_UFUNCS: dict = {}


def _custom_ufuncs(act: Activation):
    """Vectorised (sigma, dsigma) of a custom activation: a numba ufunc if it compiles, else numpy.vectorize."""
    key = (act.sigma, act.dsigma)
    if key not in _CUSTOM_UFUNCS:
        pair = []
        for fn in key:
            py = getattr(fn, "py_func", fn)
            try:
                import numba

                uf = numba.vectorize(["float64(float64)"])(py)
                uf(np.zeros(1))
            except Exception:  # noqa: BLE001 - not numba-compilable: fall back to a Python loop
                uf = np.vectorize(lambda z, f=fn: float(f(float(z))), otypes=[np.float64])
            pair.append(uf)
        _CUSTOM_UFUNCS[key] = tuple(pair)
    return _CUSTOM_UFUNCS[key]


def _values(act: Activation, z):
    """sigma(z) and sigma'(z) elementwise, any shape."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    if act.is_custom:
        sig, dsig = _custom_ufuncs(act)
        return np.asarray(sig(z), dtype=np.float64), np.asarray(dsig(z), dtype=np.float64)
    flat = z.reshape(-1)
    s = np.empty_like(flat)
    ds = np.empty_like(flat)
    _k.activation_values(act.code, flat, s, ds)
    return s.reshape(z.shape), ds.reshape(z.shape)


def _slab(act, Xb, W, a, b, inv_sqrt_d):
    """S = sigma(z), G = a sigma'(z) for z = Xb W^T / sqrt(d) + b: two (B, m) arrays."""
    Z = Xb @ W.T
    if act.is_custom:
        Z *= inv_sqrt_d
        Z += b
        S, dS = _values(act, Z)
        dS *= a
        return S, dS
    S = np.empty_like(Z)
    G = np.empty_like(Z)
    _k.activation_slab(Z, a, b, inv_sqrt_d, act.code, S, G)
    return S, G


# ----------------------------------------------------------------------------------------------------------
# empirical kernel
# ----------------------------------------------------------------------------------------------------------


def model_ntk(theta, X1, X2=None, *, model, dynamics=None, block=None):
    r"""Empirical NTK of the particles of ``model`` trained with ``dynamics``.

    A convenience over :func:`empirical_ntk` that takes activation, scaling, bias and width from a
    :class:`~meanfield.model.Model` and ``lr``, ``layer_lr`` from a :class:`~meanfield.flow.Dynamics`
    (default: 1 and (1, 1, 1)), so that :math:`\dot f = -\frac1n\Theta (f - y)` holds for the flow built
    from the same objects.
    """
    lr, layer_lr = (1.0, (1.0, 1.0, 1.0)) if dynamics is None else (dynamics.lr, dynamics.layer_lr)
    return empirical_ntk(theta, X1, X2, activation=model.act, scaling=model.scale, lr=lr, layer_lr=layer_lr,
                         bias=model.bias, m=model.m, block=block)


def empirical_ntk(
    theta,
    X1,
    X2=None,
    *,
    activation="relu",
    scaling="mean_field",
    lr=1.0,
    layer_lr=(1.0, 1.0, 1.0),
    bias=False,
    m=None,
    block=None,
):
    r"""Empirical neural tangent kernel of a particle state.

    Parameters
    ----------
    theta : ndarray, shape (m, p)
        Particles in the layout ``[a, w_1..w_d, (b)]``; ``p = 1 + d`` (``+ 1`` with ``bias``).
    X1 : ndarray, shape (n1, d)
    X2 : ndarray, shape (n2, d), optional
        Second input set; ``None`` means ``X1`` (the result is then exactly symmetric).
    activation : str or Activation
        A registry name or :func:`meanfield.activations.custom`.
    scaling : str or Scaling
        A preset of :func:`meanfield.scaling.get_scaling` or a :class:`~meanfield.scaling.Scaling`.
    lr : float
        Learning rate :math:`\eta` (> 0).
    layer_lr : tuple of 3 float
        Per-layer multipliers :math:`D = (\eta_a, \eta_w, \eta_b)`; ``eta_b`` is ignored without bias.
    bias : bool
        Whether the particles carry a bias column.
    m : int, optional
        Width entering :math:`m^{\beta - 2\alpha}`; defaults to ``theta.shape[0]``.
    block : int, optional
        Rows of ``X1`` (and ``X2``) processed at once; by default chosen so a (block, m) slab stays near
        2**24 elements. Results do not depend on it beyond rounding of the products.

    Returns
    -------
    ndarray, shape (n1, n2)

    Accuracy
    --------
    Rounding of two Gram-type products: relative ~1e-15 (tests/test_ntk.py against finite-difference
    Jacobians and the outputs' time derivative under the flow).

    Notes
    -----
    With :math:`z_{ij} = w_j\cdot x_i/\sqrt d + b_j`, :math:`S_{ij} = \sigma(z_{ij})` and
    :math:`G_{ij} = a_j\sigma'(z_{ij})`,

    .. math:: \Theta(X_1, X_2) = \eta\, m^{\beta-2\alpha}\Big[\eta_a S_1 S_2^\top
              + \big(\eta_w X_1 X_2^\top/d + \eta_b\big) \odot \big(G_1 G_2^\top\big)\Big],

    two Gram-type products over blocks of rows: the :math:`n\times mp` Jacobian is never formed. The output
    scale :math:`c` cancels between :math:`\partial f/\partial\theta` (factor :math:`c`, twice) and the
    velocity (factor :math:`c^{-2}`).
    """
    act = get_activation(activation)
    sc = get_scaling(scaling)
    bias = bool(bias)
    theta = _particles(theta, bias)
    width, p = theta.shape
    d = p - 1 - int(bias)
    X1 = _inputs(X1, "X1", d)
    symmetric = X2 is None
    X2 = X1 if symmetric else _inputs(X2, "X2", d)
    eta = check_number("lr", lr, low=0, low_open=True)
    eta_a, eta_w, eta_b = _layer_lr(layer_lr)
    if not bias:
        eta_b = 0.0
    if m is None:
        m = width
    else:
        check_int("m", m, low=1, allowed="a positive integer")
    if block is None:
        block = max(1, _SLAB_ELEMENTS // width)
    block = check_int("block", block, low=1, allowed="a positive integer")

    pref = eta * float(m) ** (sc.beta - 2.0 * sc.alpha)
    a = np.ascontiguousarray(theta[:, 0])
    W = np.ascontiguousarray(theta[:, 1 : 1 + d])
    b = np.ascontiguousarray(theta[:, 1 + d]) if bias else np.zeros(width)
    inv_sqrt_d = 1.0 / math.sqrt(d)

    n1, n2 = X1.shape[0], X2.shape[0]
    out = np.empty((n1, n2))
    starts2 = range(0, n2, block)
    cache2 = None
    if not symmetric and n2 * width <= 2 * _SLAB_ELEMENTS:
        cache2 = {j0: _slab(act, X2[j0 : j0 + block], W, a, b, inv_sqrt_d) for j0 in starts2}
    for i0 in range(0, n1, block):
        i1 = min(n1, i0 + block)
        S1, G1 = _slab(act, X1[i0:i1], W, a, b, inv_sqrt_d)
        for j0 in starts2:
            if symmetric and j0 < i0:
                continue
            j1 = min(n2, j0 + block)
            if symmetric and j0 == i0:
                S2, G2 = S1, G1
            elif cache2 is not None:
                S2, G2 = cache2[j0]
            else:
                S2, G2 = _slab(act, X2[j0:j1], W, a, b, inv_sqrt_d)
            lin = X1[i0:i1] @ X2[j0:j1].T
            lin *= eta_w / d
            lin += eta_b
            blk = G1 @ G2.T
            blk *= lin
            if eta_a != 0.0:
                blk += eta_a * (S1 @ S2.T)
            blk *= pref
            out[i0:i1, j0:j1] = blk
    if symmetric:
        iu = np.triu_indices(n1, 1)
        out[(iu[1], iu[0])] = out[iu]
    return out


# ----------------------------------------------------------------------------------------------------------
# Gaussian expectations: closed forms and Gauss-Hermite quadrature
# ----------------------------------------------------------------------------------------------------------


def _relu_closed(q1, q2, c, det=None):
    s = np.sqrt(q1 * q2)
    det = np.maximum(q1 * q2 - c * c if det is None else det, 0.0)
    pa = np.arctan2(np.sqrt(det), -c)  # pi - arccos(rho), accurate near rho = +-1
    degenerate = s <= 0.0
    ess = (np.sqrt(det) + pa * c) / (2.0 * math.pi)
    edd = pa / (2.0 * math.pi)
    ess = np.where(degenerate, 0.0, ess)
    edd = np.where(degenerate, 0.0, edd)
    return ess, edd


def _erf_closed(q1, q2, c, det=None):
    den = (1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)
    arg = np.clip(2.0 * c / np.sqrt(den), -1.0, 1.0)
    ess = (2.0 / math.pi) * np.arcsin(arg)
    det = np.maximum(q1 * q2 - c * c if det is None else det, 0.0)
    edd = (4.0 / math.pi) / np.sqrt(1.0 + 2.0 * (q1 + q2) + 4.0 * det)  # den - 4 c^2 without cancellation
    return ess, edd


def _identity_closed(q1, q2, c, det=None):
    return c + 0.0 * (q1 + q2), np.ones(np.broadcast(q1, q2, c).shape)


def _quadratic_closed(q1, q2, c, det=None):
    return q1 * q2 + 2.0 * c * c, 4.0 * c + 0.0 * (q1 + q2)


def _sin_minus_x_cos(t):
    """sin t - t cos t for t in [0, pi], by its series below 0.5 (no cancellation)."""
    t = np.asarray(t, dtype=np.float64)
    t2 = t * t
    series = np.zeros_like(t)
    term = t * t2  # (-1)^(k+1) t^(2k+1) 2k / (2k+1)!, k = 1..8
    fact = 6.0
    for k in range(1, 9):
        series += (-1) ** (k + 1) * term * (2 * k) / fact
        term = term * t2
        fact *= (2 * k + 2) * (2 * k + 3)
    return np.where(t < 0.5, series, np.sin(t) - t * np.cos(t))


def _relu_next_det(q1, q2, c, det, sw2, sb2, s2):
    """q1' q2' - c'^2 of the next layer for relu, without cancellation near rho = 1.

    With J = sin t + (pi - t) cos t, E[s(u)^2] = s2 q/2 and E[s(u)s(v)] = s2 sqrt(q1 q2) J / 2 pi:
    q1'q2' - c'^2 = sw2^2 s2^2 q1 q2 (pi - J)(pi + J) / 4 pi^2
                    + sw2 sb2 s2 [(sqrt q1 - sqrt q2)^2 / 2 + sqrt(q1 q2) (pi - J) / pi],
    pi - J = 2 pi sin^2(t/2) - (sin t - t cos t).
    """
    t = np.arctan2(np.sqrt(det), c)
    pmj = 2.0 * math.pi * np.sin(0.5 * t) ** 2 - _sin_minus_x_cos(t)
    ppj = 2.0 * math.pi - pmj
    r1, r2 = np.sqrt(q1), np.sqrt(q2)
    return (sw2 * sw2 * s2 * s2 * q1 * q2 * pmj * ppj / (4.0 * math.pi**2)
            + sw2 * sb2 * s2 * (0.5 * (r1 - r2) ** 2 + r1 * r2 * pmj / math.pi))


def _adaptive(act, q1, q2, c, det):
    """E[s(u)s(v)], E[s'(u)s'(v)] of a built-in activation by the population module's integrand-adapted rule."""
    shape = np.broadcast(q1, q2, c, det).shape
    flat = [np.ascontiguousarray(np.broadcast_to(v, shape), dtype=np.float64).reshape(-1) for v in (q1, q2, c, det)]
    zeros = np.zeros(flat[0].shape[0])
    out = np.empty((flat[0].shape[0], 6))
    _kp.pop_pair_table(act.code, _kp.QUAD, *flat, zeros, zeros, np.zeros(1), np.ones(1), out)
    return out[:, 0].reshape(shape), out[:, 3].reshape(shape)


#: Largest Gauss-Hermite node count: numpy's ``hermegauss`` overflows from 371 nodes on (all weights 0 or NaN).
MAX_QUAD_POINTS = 370
#: Gauss-Hermite nodes per dimension for custom activations when ``quad_points`` is None.
CUSTOM_QUAD_POINTS = 200

CLOSED_FORMS = {
    "identity": _identity_closed,
    "relu": _relu_closed,
    "erf": _erf_closed,
    "quadratic": _quadratic_closed,
}
"""Closed-form ``(q1, q2, c) -> (E[s(u)s(v)], E[s'(u)s'(v)])`` for built-in activations, by name.

``relu``: :math:`\\frac{1}{2\\pi}(\\sqrt{q_1q_2 - c^2} + (\\pi - \\vartheta)c)` and :math:`(\\pi - \\vartheta)/2\\pi`,
:math:`\\vartheta = \\arccos(c/\\sqrt{q_1 q_2})` (arc-cosine kernels of order 1 and 0); ``erf``:
:math:`\\frac2\\pi\\arcsin\\frac{2c}{\\sqrt{(1+2q_1)(1+2q_2)}}` and
:math:`\\frac4\\pi[(1+2q_1)(1+2q_2) - 4c^2]^{-1/2}`; ``identity``: :math:`c` and 1; ``quadratic``:
:math:`q_1q_2 + 2c^2` and :math:`4c`."""


def _gauss_hermite(act, q1, q2, c, quad_points):
    nodes, weights = np.polynomial.hermite_e.hermegauss(quad_points)
    weights = weights / math.sqrt(2.0 * math.pi)
    keep = weights > _NEGLIGIBLE_WEIGHT  # drop tail nodes that cannot contribute in double precision
    nodes, weights = np.ascontiguousarray(nodes[keep]), np.ascontiguousarray(weights[keep])
    shape = np.broadcast(q1, q2, c).shape
    f1 = np.ascontiguousarray(np.broadcast_to(q1, shape), dtype=np.float64).reshape(-1)
    f2 = np.ascontiguousarray(np.broadcast_to(q2, shape), dtype=np.float64).reshape(-1)
    fc = np.ascontiguousarray(np.broadcast_to(c, shape), dtype=np.float64).reshape(-1)
    ess = np.empty(f1.shape[0])
    edd = np.empty(f1.shape[0])
    if not act.is_custom:
        inner = np.outer(weights, weights) > _NEGLIGIBLE_WEIGHT  # contiguous band around the centre per row
        lo = np.argmax(inner, axis=1).astype(np.int64)
        hi = (inner.shape[1] - np.argmax(inner[:, ::-1], axis=1)).astype(np.int64)
        _k.gauss_hermite_pairs(act.code, f1, f2, fc, nodes, weights, lo, hi, 1.0, ess, edd)
        return ess.reshape(shape), edd.reshape(shape)
    # custom activation: vectorised over blocks of pairs, (P, K, K) arrays
    K = nodes.shape[0]
    P = max(1, (1 << 20) // (K * K))
    for p0 in range(0, f1.shape[0], P):
        sl = slice(p0, p0 + P)
        s1 = np.sqrt(np.maximum(f1[sl], 0.0))
        s2 = np.sqrt(np.maximum(f2[sl], 0.0))
        prod = s1 * s2
        rho = np.where(prod > 0, np.clip(fc[sl] / np.where(prod > 0, prod, 1.0), -1.0, 1.0), 0.0)
        r = np.sqrt(1.0 - rho * rho)
        su, dsu = _values(act, s1[:, None] * nodes[None, :])  # (P, K)
        v = (s2 * rho)[:, None, None] * nodes[None, :, None] + (s2 * r)[:, None, None] * nodes[None, None, :]
        sv, dsv = _values(act, v)  # (P, K, K)
        ess[sl] = np.einsum("k,pk,pk->p", weights, su, sv @ weights)
        edd[sl] = np.einsum("k,pk,pk->p", weights, dsu, dsv @ weights)
    return ess.reshape(shape), edd.reshape(shape)


def _check_rule(method, quad_points, activation_scale) -> float:
    """Check the integration settings shared by the kernel functions; return the squared activation scale."""
    check_choice("method", method, ("auto", "closed", "quadrature"))
    if quad_points is not None:
        check_int("quad_points", quad_points, low=2, high=MAX_QUAD_POINTS,
                  allowed=f"None (nodes chosen from the integrand) or an integer between 2 and {MAX_QUAD_POINTS} "
                          "(Gauss-Hermite overflows beyond)")
    return check_number("activation_scale", activation_scale) ** 2


def gaussian_expectations(activation, q1, q2, c, *, method="auto", quad_points=None, activation_scale=1.0):
    r"""Gaussian expectations of products of the activation and of its derivative.

    Parameters
    ----------
    activation : str or Activation
    q1, q2, c : array_like, broadcastable
        Variances of :math:`u`, :math:`v` and their covariance (:math:`c^2 \le q_1 q_2`).
    method : {"auto", "closed", "quadrature"}
        ``"auto"`` uses :data:`CLOSED_FORMS` when the (built-in) activation has one, quadrature otherwise.
    quad_points : int, optional
        ``None`` (default): built-in activations use the integrand-adapted rule of
        :func:`meanfield.population.pair_expectations` (graded composite Gauss-Legendre, nodes chosen from the
        variances), custom activations a 200 x 200 Gauss-Hermite grid. An integer n (2 to 370; numpy's
        Gauss-Hermite weights overflow beyond) asks for the fixed n x n Gauss-Hermite grid, whose error is not
        controlled (for tanh it grows from ~1e-10 at variance 1 to ~1e-5 at variance 10).
    activation_scale : float
        :math:`s` in :math:`\sigma_s = s\,\sigma`; both results are multiplied by :math:`s^2`.

    Returns
    -------
    Ess, Edd : ndarray, broadcast shape of the inputs
        :math:`E[\sigma_s(u)\sigma_s(v)]` and :math:`E[\sigma_s'(u)\sigma_s'(v)]`,
        :math:`(u, v) \sim N\big(0, \begin{pmatrix} q_1 & c \\ c & q_2\end{pmatrix}\big)`.

    Notes
    -----
    Accuracy (default settings, every built-in activation): relative error below 1e-12 (absolute 1e-14 times
    the larger of the two values where a value is near zero) for variances up to at least 1e4, correlations
    up to :math:`\pm 1` included (checked against mpmath in tests/test_ntk.py and tests/test_population.py).
    For relu the closed form's slope in :math:`\rho` is infinite at :math:`\rho = \pm1`: given
    :math:`(q_1, q_2, c)` the result is exact for those numbers, and :func:`analytic_ntk` computes
    :math:`q_1q_2 - c^2` from the inputs without cancellation.

    Gauss-Hermite writes :math:`u = \sqrt{q_1}\xi_1`, :math:`v = \sqrt{q_2}(\rho\xi_1 + \sqrt{1-\rho^2}\xi_2)`
    with probabilists' nodes; it is exact for polynomials of degree below ``2 * quad_points`` and converges
    geometrically for smooth activations, but at a rate set by the distance of :math:`\sigma`'s complex
    singularities in units of the standard deviation, which shrinks as the variances grow.
    """
    act = get_activation(activation)
    s2 = _check_rule(method, quad_points, activation_scale)
    q1 = np.asarray(q1, dtype=np.float64)
    q2 = np.asarray(q2, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    ess, edd = _expectations(act, q1, q2, c, q1 * q2 - c * c, method, quad_points)
    return s2 * np.asarray(ess, dtype=np.float64), s2 * np.asarray(edd, dtype=np.float64)


def _expectations(act, q1, q2, c, det, method, quad_points):
    """gaussian_expectations without validation, with the determinant q1 q2 - c^2 given."""
    closed = None if act.is_custom else CLOSED_FORMS.get(act.name)
    if method == "closed" and closed is None:
        raise ConfigError("method", method, "'closed' only for " + ", ".join(CLOSED_FORMS))
    if closed is not None and method != "quadrature":
        return closed(q1, q2, c, det)
    if act.is_custom or quad_points is not None:
        return _gauss_hermite(act, q1, q2, c, int(CUSTOM_QUAD_POINTS if quad_points is None else quad_points))
    return _adaptive(act, q1, q2, c, np.maximum(det, 0.0))


def _input_geometry(X1, X2, sw2, sb2):
    """Layer-one variances, covariances and determinants, and the mask of pairs of identical inputs.

    Identical rows get bitwise identical variances (norms are computed once per distinct row), their
    covariance is set to that variance and their determinant to 0, so that the two-set call reproduces the
    one-set call at shared points. Elsewhere q1 q2 - c^2 is computed as the product difference and, where that
    is below DET_RECOMPUTE q1 q2 (near-parallel inputs), recomputed without cancellation as
    sw2^2 |x|^2|x'|^2 sin^2(angle)/d^2 + sw2 sb2 |x - x'|^2/d, sin(angle) = |a - b||a + b|/2 for unit vectors.
    """
    n1, d = X1.shape
    allX = np.vstack([X1, X2]) + 0.0  # -0.0 -> 0.0
    uniq, inv = np.unique(allX, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    normsq = np.einsum("ij,ij->i", uniq, uniq)
    nu1, nu2 = normsq[inv[:n1]], normsq[inv[n1:]]
    q1 = sw2 * nu1 / d + sb2
    q2 = sw2 * nu2 / d + sb2
    dot = X1 @ X2.T / d
    cov = sw2 * dot + sb2
    same = inv[:n1][:, None] == inv[n1:][None, :]
    det = q1[:, None] * q2[None, :] - cov * cov
    bad = np.argwhere((det <= _kp.DET_RECOMPUTE * q1[:, None] * q2[None, :]) & ~same)
    if bad.size:
        for i, j in bad:
            x, y = X1[i], X2[j]
            nx, ny = math.sqrt(nu1[i]), math.sqrt(nu2[j])
            lag = 0.0
            if nx > 0 and ny > 0:
                a, b = x / nx, y / ny
                lag = nu1[i] * nu2[j] * float((a - b) @ (a - b)) * float((a + b) @ (a + b)) * 0.25
            det[i, j] = sw2 * sw2 * lag / (d * d) + sw2 * sb2 * float((x - y) @ (x - y)) / d
    ii, jj = np.nonzero(same)
    dot[ii, jj] = nu1[ii] / d
    cov[ii, jj] = q1[ii]
    det[ii, jj] = 0.0
    return q1, q2, dot, cov, np.maximum(det, 0.0), same


# ----------------------------------------------------------------------------------------------------------
# analytic kernels: two-layer closed forms and the depth-L recursion
# ----------------------------------------------------------------------------------------------------------


class _Kernels(NamedTuple):
    nngp: np.ndarray
    ntk: np.ndarray


def _analytic(X1, X2, activation, sigma_w, sigma_a, sigma_b, bias, lr, layer_lr, depth, activation_scale,
              method, quad_points):
    act = get_activation(activation)
    X1 = _inputs(X1, "X1")
    d = X1.shape[1]
    symmetric = X2 is None
    X2 = X1 if symmetric else _inputs(X2, "X2", d)
    sw2 = check_number("sigma_w", sigma_w) ** 2
    sa2 = check_number("sigma_a", sigma_a) ** 2
    sb2 = check_number("sigma_b", sigma_b) ** 2 if bias else 0.0
    eta = check_number("lr", lr, low=0, low_open=True)
    eta_a, eta_w, eta_b = _layer_lr(layer_lr)
    if not bias:
        eta_b = 0.0
    check_int("depth", depth, low=1, allowed="a positive integer (number of hidden layers)")
    s2 = _check_rule(method, quad_points, activation_scale)

    def expect(q1, q2, c, det):
        ess, edd = _expectations(act, q1, q2, c, det, method, quad_points)
        return s2 * np.asarray(ess, dtype=np.float64), s2 * np.asarray(edd, dtype=np.float64)

    def expect_pairs(q1, q2, c, det):
        if not symmetric:
            return expect(q1[:, None], q2[None, :], c, det)
        iu = np.triu_indices(q1.shape[0])  # symmetric case: each unordered pair once, mirrored
        ess_u, edd_u = expect(q1[iu[0]], q1[iu[1]], c[iu], det[iu])
        ess = np.empty_like(c)
        edd = np.empty_like(c)
        ess[iu] = ess_u
        edd[iu] = edd_u
        ess[(iu[1], iu[0])] = ess_u
        edd[(iu[1], iu[0])] = edd_u
        return ess, edd

    q1, q2, dot, cov, det, same = _input_geometry(X1, X2, sw2, sb2)
    if symmetric:
        dot = 0.5 * (dot + dot.T)
        cov = 0.5 * (cov + cov.T)
        det = 0.5 * (det + det.T)
        np.fill_diagonal(cov, q1)
    tangent = eta_w * dot + eta_b
    ii, jj = np.nonzero(same)
    relu_closed = act.name == "relu" and not act.is_custom and method != "quadrature"
    for _ in range(depth - 1):
        ess, edd = expect_pairs(q1, q2, cov, det)
        tangent = tangent * (sw2 * edd) + eta_w * ess + eta_b
        if relu_closed:  # the arc-cosine kernel's slope is infinite at rho = 1: carry the determinant stably
            det = _relu_next_det(q1[:, None], q2[None, :], cov, det, sw2, sb2, s2)
        cov = sw2 * ess + sb2
        q1n = sw2 * expect(q1, q1, q1, np.zeros_like(q1))[0] + sb2
        q2 = q1n if symmetric else sw2 * expect(q2, q2, q2, np.zeros_like(q2))[0] + sb2
        q1 = q1n
        cov[ii, jj] = q1[ii]  # identical inputs stay identical: rho = 1 exactly
        if not relu_closed:
            det = np.maximum(q1[:, None] * q2[None, :] - cov * cov, 0.0)
        if symmetric:
            det = 0.5 * (det + det.T)
        det[ii, jj] = 0.0
    ess, edd = expect_pairs(q1, q2, cov, det)
    return _Kernels(sa2 * ess, eta * (tangent * (sa2 * edd) + eta_a * ess))


def nngp(X1, X2=None, activation="relu", *, sigma_w=1.0, sigma_a=1.0, sigma_b=0.0, bias=False, depth=1,
         activation_scale=1.0, method="auto", quad_points=None):
    r"""Infinite-width NNGP kernel: covariance of the outputs at initialisation under ``ntk`` scaling.

    Parameters
    ----------
    X1 : ndarray, shape (n1, d)
    X2 : ndarray, shape (n2, d), optional
        ``None`` means ``X1``.
    activation : str or Activation
    sigma_w, sigma_a, sigma_b : float
        Initialisation standard deviations of :math:`w`, :math:`a`, :math:`b`.
    bias : bool
        Whether hidden layers have a bias (``sigma_b`` is ignored without one).
    depth : int
        Number of hidden layers :math:`L` (1 is the two-layer network of the core conventions).
    activation_scale : float
        Use :math:`s\,\sigma` as the activation (e.g. :math:`\sqrt2` for the normalised relu).
    method, quad_points
        See :func:`gaussian_expectations`.

    Returns
    -------
    ndarray, shape (n1, n2)

    Accuracy
    --------
    As :func:`analytic_ntk`.

    Notes
    -----
    For :math:`L = 1`, :math:`\Sigma^*(x, x') = \sigma_a^2 E[\sigma(z)\sigma(z')]` with :math:`(z, z')` centred
    Gaussian, :math:`E z^2 = \sigma_w^2|x|^2/d + \sigma_b^2`, :math:`E zz' = \sigma_w^2 x\cdot x'/d + \sigma_b^2`.
    Deeper: :math:`\Sigma^{(1)} = \sigma_w^2 x\cdot x'/d + \sigma_b^2`,
    :math:`\Sigma^{(l+1)} = \sigma_w^2 E_{\Sigma^{(l)}}[\sigma(u)\sigma(v)] + \sigma_b^2` for hidden layers and
    :math:`\sigma_a^2 E_{\Sigma^{(L)}}[\sigma(u)\sigma(v)]` for the readout (neural-tangents' ``stax.Dense``
    with ``W_std = sigma_w``, ``b_std = sigma_b``, readout ``W_std = sigma_a`` and no readout bias).
    """
    return _analytic(X1, X2, activation, sigma_w, sigma_a, sigma_b, bias, 1.0, (1.0, 1.0, 1.0), depth,
                     activation_scale, method, quad_points).nngp


def analytic_ntk(X1, X2=None, activation="relu", *, sigma_w=1.0, sigma_a=1.0, sigma_b=0.0, bias=False,
                 lr=1.0, layer_lr=(1.0, 1.0, 1.0), depth=1, activation_scale=1.0, method="auto",
                 quad_points=None):
    r"""Infinite-width neural tangent kernel :math:`\Theta^*` at initialisation.

    The limit of :func:`empirical_ntk` at initialisation as :math:`m\to\infty` for every preset with
    :math:`\beta - 2\alpha = -1` (``mean_field``, ``ntk``, ``lazy``); for other exponents the empirical kernel
    behaves as :math:`m^{\beta - 2\alpha + 1}\Theta^*`.

    Parameters
    ----------
    X1 : ndarray, shape (n1, d)
    X2 : ndarray, shape (n2, d), optional
        ``None`` means ``X1``.
    activation : str or Activation
    sigma_w, sigma_a, sigma_b : float
        Initialisation standard deviations.
    bias : bool
        Whether hidden layers have a (trained) bias.
    lr : float
        :math:`\eta`.
    layer_lr : tuple of 3 float
        :math:`(\eta_a, \eta_w, \eta_b)`; :math:`\eta_w` and :math:`\eta_b` apply to every hidden layer.
    depth : int
        Number of hidden layers :math:`L`.
    activation_scale : float
        Use :math:`s\,\sigma` as the activation.
    method, quad_points
        See :func:`gaussian_expectations`.

    Returns
    -------
    ndarray, shape (n1, n2)

    Accuracy
    --------
    Default settings, every built-in activation: relative error below 1e-12 (tests/test_ntk.py against
    mpmath recursions). Inputs present in both sets give bitwise the same variances and
    :math:`\rho = 1` exactly, so the two-set call reproduces the one-set call there (to ~1e-15).
    :math:`q_1q_2 - c^2` is computed without cancellation for near-parallel inputs: from the inputs at the
    first layer, and for relu (whose arc-cosine kernel has infinite slope at :math:`\rho = 1`) carried through
    the deeper layers in closed form (tests: inputs 2^-40 apart at depth 3, against mpmath).

    Notes
    -----
    Two-layer network (:math:`L = 1`):

    .. math:: \Theta^*(x, x') = \eta\Big[\eta_a E[\sigma(z)\sigma(z')]
              + \sigma_a^2 E[\sigma'(z)\sigma'(z')]\,(\eta_w x\cdot x'/d + \eta_b)\Big].

    Depth :math:`L`: with :math:`\Sigma^{(l)}` as in :func:`nngp`, :math:`\dot\Sigma^{(l+1)} =
    \sigma_w^2 E_{\Sigma^{(l)}}[\sigma'(u)\sigma'(v)]` and :math:`\Theta^{(1)} = \eta_w x\cdot x'/d + \eta_b`,

    .. math:: \Theta^{(l+1)} = \Theta^{(l)}\dot\Sigma^{(l+1)} + \eta_w E_{\Sigma^{(l)}}[\sigma(u)\sigma(v)] + \eta_b,
              \qquad \Theta^* = \eta\big[\Theta^{(L)}\sigma_a^2 E_{\Sigma^{(L)}}[\sigma'\sigma']
              + \eta_a E_{\Sigma^{(L)}}[\sigma\sigma]\big].

    With :math:`(\eta_a, \eta_w, \eta_b) = (\sigma_a^2, \sigma_w^2, \sigma_b^2)` and :math:`\eta = 1` this is
    the recursion :math:`\Theta^{(l+1)} = \Theta^{(l)}\dot\Sigma^{(l+1)} + \Sigma^{(l+1)}` of neural-tangents'
    ``parameterization='ntk'`` verbatim; in particular with all standard deviations and multipliers 1.
    """
    return _analytic(X1, X2, activation, sigma_w, sigma_a, sigma_b, bias, lr, layer_lr, depth,
                     activation_scale, method, quad_points).ntk


# ----------------------------------------------------------------------------------------------------------
# kernel observables
# ----------------------------------------------------------------------------------------------------------


def _square(K, key):
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ConfigError(key, getattr(K, "shape", K), "a square (n, n) kernel matrix")
    return K


def kernel_change(K_t, K_0):
    r"""Relative change :math:`\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F`.

    Parameters
    ----------
    K_t, K_0 : ndarray, shape (n1, n2)

    Returns
    -------
    float
    """
    K_t = np.asarray(K_t, dtype=np.float64)
    K_0 = np.asarray(K_0, dtype=np.float64)
    if K_t.shape != K_0.shape:
        raise ConfigError("K_t", K_t.shape, f"the shape of K_0, {K_0.shape}")
    norm0 = np.linalg.norm(K_0)
    if norm0 == 0.0:
        raise ConfigError("K_0", "zero matrix", "a kernel with non-zero Frobenius norm")
    return float(np.linalg.norm(K_t - K_0) / norm0)


def kernel_alignment(K, y):
    r"""Kernel-target alignment :math:`y^\top K y / (\|K\|_F \|y\|^2)`, in :math:`[-1, 1]`.

    Parameters
    ----------
    K : ndarray, shape (n, n)
    y : ndarray, shape (n,)

    Returns
    -------
    float
    """
    K = _square(K, "K")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != K.shape[0]:
        raise ConfigError("y", y.shape, f"a vector of length {K.shape[0]}")
    den = np.linalg.norm(K) * float(y @ y)
    if den == 0.0:
        raise ConfigError("y", "zero vector or zero kernel", "non-zero targets and kernel")
    return float(y @ K @ y / den)


def lambda_min(K):
    r"""Smallest eigenvalue of the symmetric part of a square kernel matrix.

    Parameters
    ----------
    K : ndarray, shape (n, n)

    Returns
    -------
    float
    """
    K = _square(K, "K")
    return float(np.linalg.eigvalsh(0.5 * (K + K.T))[0])


class KernelObservables(NamedTuple):
    """Kernel observables along a trajectory, one entry per snapshot.

    Attributes
    ----------
    relative_change : ndarray, shape (T,)
        :math:`\\|\\Theta_t - \\Theta_0\\|_F / \\|\\Theta_0\\|_F` on the training set.
    alignment : ndarray, shape (T,)
        :math:`y^\\top\\Theta_t y / (\\|\\Theta_t\\|_F \\|y\\|^2)`.
    lambda_min : ndarray, shape (T,)
        Smallest eigenvalue of :math:`\\Theta_t(X, X)`.
    """

    relative_change: np.ndarray
    alignment: np.ndarray
    lambda_min: np.ndarray


def kernel_observables(thetas, X, y, *, K_0=None, **kernel_kw):
    r"""Kernel observables of a sequence of particle states on the training set.

    Parameters
    ----------
    thetas : sequence of ndarray, each shape (m, p)
        Snapshots of a particle trajectory; the first is the reference unless ``K_0`` is given.
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    K_0 : ndarray, shape (n, n), optional
        Reference kernel (e.g. the kernel at initialisation when ``thetas`` starts later).
    **kernel_kw
        Model quantities passed to :func:`empirical_ntk` (``activation``, ``scaling``, ``lr``, ``layer_lr``,
        ``bias``, ``m``, ``block``).

    Returns
    -------
    KernelObservables
    """
    thetas = list(thetas)
    if not thetas:
        raise ConfigError("thetas", thetas, "at least one particle state")
    ch, al, lm = [], [], []
    for th in thetas:
        K = empirical_ntk(th, X, **kernel_kw)
        if K_0 is None:
            K_0 = K
        ch.append(kernel_change(K, K_0))
        al.append(kernel_alignment(K, y))
        lm.append(lambda_min(K))
    return KernelObservables(np.array(ch), np.array(al), np.array(lm))
