r"""The two-layer network as a set of particles.

A :class:`Model` fixes the architecture and the initial distribution; the particles themselves are a plain
array ``theta`` of shape (m, p) in the column order ``[a, w_1..w_d, b]`` (``b`` only with ``bias=True``):

.. math:: f(x) = c\, m^{-\alpha} \sum_{j=1}^m a_j\, \sigma\!\left(w_j\cdot x/\sqrt d + b_j\right),
   \qquad R(\theta) = \frac1{2n}\sum_{i=1}^n (f(x_i) - y_i)^2 .

See docs/conventions.md for the full statement of the conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kernels
from .activations import Activation, get_activation
from .errors import ConfigError
from .scaling import Scaling, get_scaling
from .threads import threads_for
from .validate import DTYPES, check_bool, check_int, check_number

__all__ = ["Model", "init_particles", "outputs", "risk", "squared_loss", "split", "DTYPES"]

@dataclass(frozen=True)
class Model:
    """Architecture, scaling and initial distribution of a two-layer network.

    Parameters
    ----------
    d : int
        Input dimension.
    m : int
        Number of hidden neurons (particles).
    activation : str or Activation
        A name from ``meanfield.activations.ACTIVATIONS`` or ``meanfield.activations.custom(...)``.
    scaling : str or Scaling
        ``"mean_field"``, ``"ntk"``, ``"lazy"`` (with ``lazy_scale``) or a :class:`~meanfield.scaling.Scaling`.
    bias : bool
        Whether hidden neurons have a bias ``b_j`` (then p = d + 2, else p = d + 1).
    sigma_a, sigma_w, sigma_b : float
        Standard deviations of the initial :math:`a_j`, :math:`w_{jk}`, :math:`b_j` (defaults 1, 1, 0).
    symmetric : bool
        Draw particles in pairs :math:`(a, w, b), (-a, w, b)` so that :math:`f_0 \\equiv 0` exactly
        (m must be even).
    lazy_scale : float, optional
        The output scale c of the ``"lazy"`` preset.
    alpha, beta, c : float, optional
        The exponents and output scale of the ``"explicit"`` preset (all three required there, refused
        elsewhere).
    dtype : {"float64", "float32"}
        Floating-point type of particles and data in the kernels.
    """

    d: int
    m: int
    activation: object = "relu"
    scaling: object = "mean_field"
    bias: bool = False
    sigma_a: float = 1.0
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    symmetric: bool = False
    lazy_scale: float | None = None
    dtype: str = "float64"
    alpha: float | None = None
    beta: float | None = None
    c: float | None = None
    _act: Activation = field(init=False, repr=False, compare=False)
    _scaling: Scaling = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_int("model.d", self.d, low=1)
        check_int("model.m", self.m, low=1)
        check_bool("model.bias", self.bias)
        check_bool("model.symmetric", self.symmetric)
        if self.symmetric and self.m % 2:
            raise ConfigError("model.m", self.m, "an even number of neurons with symmetric = true")
        for key in ("sigma_a", "sigma_w", "sigma_b"):
            check_number("model." + key, getattr(self, key), low=0)
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:
            raise ConfigError("model.dtype", self.dtype, "'float64' or 'float32'")
        try:  # the registries name their own keys ("activation", "alpha", ...): say they belong to the model
            object.__setattr__(self, "_act", get_activation(self.activation))
            sc = self.scaling if isinstance(self.scaling, Scaling) else get_scaling(
                self.scaling, lazy_scale=self.lazy_scale, alpha=self.alpha, beta=self.beta, c=self.c)
        except ConfigError as err:
            key = err.key if err.key.startswith("model.") else "model." + err.key
            raise ConfigError(key, err.value, err.allowed) from None
        object.__setattr__(self, "_scaling", sc)

    @property
    def p(self) -> int:
        """Number of coordinates of a particle: 1 + d (+ 1 with bias)."""
        return 1 + self.d + int(self.bias)

    @property
    def act(self) -> Activation:
        """The resolved :class:`~meanfield.activations.Activation`."""
        return self._act

    @property
    def scale(self) -> Scaling:
        """The resolved :class:`~meanfield.scaling.Scaling` (alpha, beta, c)."""
        return self._scaling

    @property
    def np_dtype(self):
        return DTYPES[self.dtype]

    @property
    def output_scale(self) -> float:
        """:math:`c\\, m^{-\\alpha}`."""
        return self._scaling.output_scale(self.m)

    def describe(self) -> dict:
        """JSON-serialisable description of the model (for result files)."""
        sc = self._scaling
        return {
            "d": self.d, "m": self.m, "p": self.p, "activation": self._act.name, "bias": self.bias,
            "scaling": sc.name, "alpha": sc.alpha, "beta": sc.beta, "c": sc.c,
            "sigma_a": self.sigma_a, "sigma_w": self.sigma_w, "sigma_b": self.sigma_b,
            "symmetric": self.symmetric, "dtype": self.dtype,
        }


def init_particles(model: Model, rng) -> np.ndarray:
    """Draw the initial particles.

    Parameters
    ----------
    model : Model
    rng : numpy.random.Generator or int
        Source of randomness (an int is a seed for ``numpy.random.default_rng``).

    Returns
    -------
    theta : ndarray, shape (m, p)
        :math:`a_j \\sim N(0, \\sigma_a^2)`, :math:`w_j \\sim N(0, \\sigma_w^2 I_d)`,
        :math:`b_j \\sim N(0, \\sigma_b^2)`; with ``symmetric=True`` rows ``2k`` and ``2k+1`` are
        :math:`(a, w, b)` and :math:`(-a, w, b)`.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(check_int("seed", rng, low=0,
                                              allowed="a non-negative integer or a numpy.random.Generator"))
    m, d = model.m, model.d
    k = m // 2 if model.symmetric else m
    half = np.empty((k, model.p))
    half[:, 0] = model.sigma_a * rng.standard_normal(k)
    half[:, 1 : 1 + d] = model.sigma_w * rng.standard_normal((k, d))
    if model.bias:
        half[:, 1 + d] = model.sigma_b * rng.standard_normal(k)
    if model.symmetric:
        theta = np.repeat(half, 2, axis=0)
        theta[1::2, 0] = -half[:, 0]
    else:
        theta = half
    return np.ascontiguousarray(theta, dtype=model.np_dtype)


def split(theta: np.ndarray, model: Model):
    """Views ``(a, w, b)`` of a particle array; ``b`` is None without bias."""
    d = model.d
    return theta[:, 0], theta[:, 1 : 1 + d], (theta[:, 1 + d] if model.bias else None)


def check_particles(theta, model: Model, key: str = "theta") -> np.ndarray:
    """Validate a particle array against the model and return it contiguous in the model's dtype."""
    arr = np.asarray(theta)
    if arr.ndim != 2 or arr.shape != (model.m, model.p):
        raise ConfigError(key, f"array of shape {arr.shape}", f"shape (m, p) = ({model.m}, {model.p})")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(key, f"array of dtype {arr.dtype}", "a real-valued array")
    arr = np.ascontiguousarray(arr, dtype=model.np_dtype)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(key, "array with NaN or Inf", "finite values")
    return arr


def check_inputs(X, model: Model, key: str = "X") -> np.ndarray:
    """Validate an input array (n, d) and return it contiguous in the model's dtype."""
    arr = np.asarray(X)
    if arr.ndim == 1 and model.d == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != model.d or arr.shape[0] == 0:
        raise ConfigError(key, f"array of shape {arr.shape}", f"shape (n, d) with n >= 1 and d = {model.d}")
    arr = np.ascontiguousarray(arr, dtype=model.np_dtype)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(key, "array with NaN or Inf", "finite values")
    return arr


def kernels_for(model: Model):
    """The kernel namespace for the model's activation (cached built-ins, or a compiled custom set)."""
    if model.act.is_custom:
        return _kernels.custom_kernels(model.act)
    return _kernels.BUILTIN


def outputs(theta, X, model: Model) -> np.ndarray:
    r"""Network outputs :math:`f(x_i) = c\,m^{-\alpha}\sum_j a_j\sigma(w_j\cdot x_i/\sqrt d + b_j)`.

    Parameters
    ----------
    theta : ndarray, shape (m, p)
    X : ndarray, shape (n, d)
    model : Model

    Returns
    -------
    ndarray, shape (n,)
    """
    theta = check_particles(theta, model)
    X = check_inputs(X, model)
    out = np.empty(X.shape[0], dtype=model.np_dtype)
    with threads_for(X.shape[0] * model.m * model.p):
        kernels_for(model).outputs(theta, X, model.act.code, model.bias, model.output_scale, out)
    return out


def risk(theta, X, y, model: Model) -> float:
    r"""Empirical risk :math:`R = \frac1{2n}\sum_i (f(x_i) - y_i)^2`.

    Parameters
    ----------
    theta : ndarray, shape (m, p)
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    model : Model

    Returns
    -------
    float
    """
    return squared_loss(outputs(theta, X, model), y)


def squared_loss(f, y) -> float:
    r""":math:`\frac1{2n}\sum_i (f_i - y_i)^2` in float64: the loss of every risk of a finite data set (the
    network's and its linearisation's).

    >>> squared_loss([1.0, 2.0], [0.0, 0.0])
    1.25
    """
    f = np.asarray(f, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != f.shape[0]:
        raise ConfigError("y", f"array of shape {y.shape}", f"shape (n,) with n = {f.shape[0]} (rows of X)")
    r = f - y
    return 0.5 * float(np.sum(r * r)) / r.shape[0]
