"""Elementwise activation slabs for the empirical and analytic neural tangent kernels.

Both kernels need, for a block of inputs, the matrices ``S = sigma(z)`` and ``G = a * sigma'(z)`` over a
(block, m) slab of pre-activations; the Gram-type products ``S1 @ S2.T`` and ``G1 @ G2.T`` are then BLAS
calls in ``meanfield.ntk``. Every output element is written by exactly one thread, so results do not depend
on the number of threads.
"""

from numba import njit, prange

from .activation import dsigma, sigma


@njit(cache=True, parallel=True)
def activation_slab(Z, a, b, inv_sqrt_d, code, S, G):
    """Fill ``S[i, j] = sigma(z)``, ``G[i, j] = a[j] * sigma'(z)`` with ``z = Z[i, j] * inv_sqrt_d + b[j]``.

    ``Z`` is (B, m) (the products ``X @ W.T``), ``a`` and ``b`` are (m,); ``S`` and ``G`` are (B, m) outputs.
    """
    B, m = Z.shape
    for i in prange(B):
        for j in range(m):
            z = Z[i, j] * inv_sqrt_d + b[j]
            S[i, j] = sigma(code, z)
            G[i, j] = a[j] * dsigma(code, z)


@njit(cache=True, parallel=True)
def activation_values(code, z, s_out, ds_out):
    """Elementwise ``s_out[k] = sigma(z[k])``, ``ds_out[k] = sigma'(z[k])`` on flat arrays."""
    for k in prange(z.shape[0]):
        s_out[k] = sigma(code, z[k])
        ds_out[k] = dsigma(code, z[k])


@njit(cache=True, parallel=True)
def gauss_hermite_pairs(code, q1, q2, c, nodes, weights, lo, hi, scale2, Ess, Edd):
    """Gauss-Hermite estimates of ``E[s(u)s(v)]`` and ``E[s'(u)s'(v)]`` for centred Gaussian pairs.

    For pair ``k`` the covariance is ``[[q1[k], c[k]], [c[k], q2[k]]]``; with probabilists' nodes
    ``xi`` and weights summing to one, ``u = sqrt(q1) xi_1`` and
    ``v = sqrt(q2) (rho xi_1 + sqrt(1 - rho^2) xi_2)``. Both results are multiplied by ``scale2``.
    ``q1, q2, c, Ess, Edd`` are flat arrays of one length; one thread writes each pair. For node ``k1`` only
    the inner nodes ``lo[k1] <= k2 < hi[k1]`` are summed (products of weights below ~1e-20 are dropped).
    """
    K = nodes.shape[0]
    for k in prange(q1.shape[0]):
        s1 = q1[k] ** 0.5 if q1[k] > 0.0 else 0.0
        s2 = q2[k] ** 0.5 if q2[k] > 0.0 else 0.0
        rho = 0.0
        if s1 > 0.0 and s2 > 0.0:
            rho = c[k] / (s1 * s2)
            if rho > 1.0:
                rho = 1.0
            elif rho < -1.0:
                rho = -1.0
        r = (1.0 - rho * rho) ** 0.5
        ess = 0.0
        edd = 0.0
        for k1 in range(K):
            u = s1 * nodes[k1]
            su = sigma(code, u)
            dsu = dsigma(code, u)
            inner_s = 0.0
            inner_d = 0.0
            base = s2 * rho * nodes[k1]
            for k2 in range(lo[k1], hi[k1]):
                v = base + s2 * r * nodes[k2]
                inner_s += weights[k2] * sigma(code, v)
                inner_d += weights[k2] * dsigma(code, v)
            ess += weights[k1] * su * inner_s
            edd += weights[k1] * dsu * inner_d
        Ess[k] = scale2 * ess
        Edd[k] = scale2 * edd
