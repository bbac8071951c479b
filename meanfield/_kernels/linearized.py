r"""Kernels of the network linearised at :math:`\theta^0` (parameter space).

.. math:: f^{\rm lin}(x;\theta) = f(x;\theta^0) + c\,m^{-\alpha}\sum_j \nabla_\theta\varphi(\theta^0_j; x)
   \cdot(\theta_j - \theta^0_j),\qquad
   \nabla_\theta\varphi(\theta^0; x)\cdot\delta = \delta_a\sigma(z^0) + a^0\sigma'(z^0)(\delta_w\cdot x/\sqrt d + \delta_b)

Its risk gradient has the same form as the network's with every :math:`\nabla\varphi` frozen at
:math:`\theta^0`, so the velocity of particle j,
:math:`-\frac{k}{|B|} D\sum_{i\in B} r^{\rm lin}_i \nabla_\theta\varphi(\theta^0_j; x_i) - \lambda\theta_j`, is
``finite.velocities`` with the features taken at ``theta0``. Same parallel layout and determinism as
``finite.py``.
"""

import math

from numba import njit, prange

from .activation import dsigma, sigma
from .finite import FASTMATH, _preactivation


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def lin_outputs(theta, theta0, X, f0, idx, nb, act, bias, out_scale, out):
    """out[k] = f_lin(X[idx[k]]) for k < nb, given f0[idx[k]] = f(X[idx[k]]; theta0)."""
    d = X.shape[1]
    m = theta.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    for k in prange(nb):
        i = idx[k]
        acc = 0.0
        for j in range(m):
            z = _preactivation(theta0, j, X, i, d, bias, inv_sqrt_d)
            dz = 0.0
            for q in range(d):
                dz += (theta[j, 1 + q] - theta0[j, 1 + q]) * X[i, q]
            dz *= inv_sqrt_d
            if bias:
                dz += theta[j, 1 + d] - theta0[j, 1 + d]
            acc += (theta[j, 0] - theta0[j, 0]) * sigma(act, z) + theta0[j, 0] * dsigma(act, z) * dz
        out[k] = f0[i] + out_scale * acc


@njit(cache=True)
def lin_residuals(theta, theta0, X, y, f0, idx, nb, act, bias, out_scale, r):
    lin_outputs(theta, theta0, X, f0, idx, nb, act, bias, out_scale, r)
    for k in range(nb):
        r[k] -= y[idx[k]]
