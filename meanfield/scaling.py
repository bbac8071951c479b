r"""Scaling presets: how width enters the output and the learning rate.

The network is :math:`f(x) = c\, m^{-\alpha} \sum_j a_j \sigma(w_j\cdot x/\sqrt d + b_j)` and each particle
moves with :math:`\dot\theta_j = -\eta\, m^{\beta} c^{-2} D \nabla_{\theta_j} R - \lambda\theta_j`
(docs/conventions.md). A :class:`Scaling` holds :math:`(\alpha, \beta, c)`.

========== ===================== =====================================================
preset     (alpha, beta, c)      regime
========== ===================== =====================================================
mean_field (1, 1, 1)             rich: particles move O(1) (Wasserstein gradient flow)
ntk        (1/2, 0, 1)           lazy: particles move O(m^-1/2), outputs follow the NTK
lazy       (1, 1, lazy_scale)    Chizat–Oyallon–Bach: lazy as lazy_scale -> infinity
explicit   (alpha, beta, c)      anything else
========== ===================== =====================================================
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import ConfigError
from .validate import check_number

__all__ = ["Scaling", "PRESETS", "get_scaling"]

PRESETS = ("mean_field", "ntk", "lazy", "explicit")


class Scaling(NamedTuple):
    """Exponents and output scale of a parameterisation.

    Attributes
    ----------
    name : str
        Preset name.
    alpha : float
        Output exponent: :math:`f = c\\,m^{-\\alpha}\\sum_j \\dots`.
    beta : float
        Learning-rate exponent: velocities carry :math:`\\eta\\, m^{\\beta} / c^2`.
    c : float
        Output scale (the lazy knob).
    """

    name: str
    alpha: float
    beta: float
    c: float

    def output_scale(self, m: int) -> float:
        """:math:`c\\, m^{-\\alpha}`, the factor in front of the sum over neurons."""
        return self.c * float(m) ** (-self.alpha)

    def velocity_scale(self, m: int) -> float:
        """:math:`m^{\\beta - \\alpha} / c`: velocity of a particle per unit of
        :math:`\\eta \\cdot \\frac1n\\sum_i (f_i - y_i) \\nabla_\\theta \\varphi(\\theta; x_i)`."""
        return float(m) ** (self.beta - self.alpha) / self.c


def get_scaling(name="mean_field", *, alpha=None, beta=None, c=None, lazy_scale=None) -> Scaling:
    """Build a :class:`Scaling` from a preset name (or pass one through).

    Parameters
    ----------
    name : str or Scaling
        ``"mean_field"``, ``"ntk"``, ``"lazy"`` or ``"explicit"``.
    alpha, beta, c : float, optional
        Required for ``"explicit"``; not allowed with the other presets.
    lazy_scale : float, optional
        :math:`c` of the ``"lazy"`` preset (> 0, default 1).
    """
    if isinstance(name, Scaling):
        return name
    if name not in PRESETS:
        raise ConfigError("scaling", name, "one of " + ", ".join(PRESETS))
    if name != "explicit" and any(v is not None for v in (alpha, beta, c)):
        raise ConfigError("scaling", name, "alpha, beta, c only with scaling = 'explicit'")
    if name != "lazy" and lazy_scale is not None:
        raise ConfigError("lazy_scale", lazy_scale, "lazy_scale only with scaling = 'lazy'")
    if name == "mean_field":
        return Scaling("mean_field", 1.0, 1.0, 1.0)
    if name == "ntk":
        return Scaling("ntk", 0.5, 0.0, 1.0)
    if name == "lazy":
        tau = 1.0 if lazy_scale is None else check_number("lazy_scale", lazy_scale, low=0, low_open=True)
        return Scaling("lazy", 1.0, 1.0, tau)
    if alpha is None or beta is None or c is None:
        raise ConfigError("scaling", name, "alpha, beta and c all given for scaling = 'explicit'")
    a = check_number("alpha", alpha)
    b = check_number("beta", beta)
    cc = check_number("c", c, low=0, low_open=True)
    return Scaling("explicit", a, b, cc)
