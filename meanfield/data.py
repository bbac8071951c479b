r"""Data sets: arrays from the user, a teacher-student generator, ``.npz``/``.csv`` files, and the shipped digits.

Every constructor returns a :class:`Dataset` ``(X, y, X_test, y_test, name, recipe, teacher)``: contiguous
float arrays that have been checked (2-D inputs, matching lengths, finite values) and a JSON-serialisable
``recipe`` from which :func:`from_recipe` rebuilds the same arrays bit for bit (generator arguments and seed;
a file's path and sha256). Bad input raises :class:`~meanfield.errors.ConfigError` naming the parameter and
what is allowed; a file that cannot be read as the data it should hold raises
:class:`~meanfield.errors.FileFormatError` naming the file.

======================== ====================================================================================
constructor              data
======================== ====================================================================================
:func:`from_arrays`      ``(X, y[, X_test, y_test])`` given by the user
:func:`teacher_student`  :math:`x \sim N(0, I_d)` or uniform on the sphere of radius :math:`\sqrt d`;
                         :math:`y = f^*(x) + \text{noise}\cdot\xi` for a two-layer teacher :math:`f^*` with k
                         neurons
:func:`load_npz`         arrays stored under given keys of a ``.npz`` file
:func:`load_csv`         a table of numbers, one column of which is the target
:func:`load_digits`      the UCI handwritten digits (1 797 images, 8x8 pixels) shipped with meanfield, as a
                         two-class (:math:`\pm 1`) or regression target
:func:`train_test_split` a random held-out part of any data set without one
======================== ====================================================================================

The teacher uses the particle layout of docs/conventions.md: row k of ``teacher`` is
:math:`(a^*_k, w^*_{k,1..d}[, b^*_k])` and

.. math:: f^*(x) = \sum_{k=1}^{K} a^*_k\, \sigma\!\left(w^*_k\cdot x/\sqrt d + b^*_k\right)

with no :math:`1/K` factor (this is the teacher of the population risk).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from typing import NamedTuple, Optional

import numpy as np

from .activations import Activation, get_activation
from .errors import ConfigError, FileFormatError
from .validate import DTYPES, check_bool, check_choice, check_dtype, check_int, check_number

__all__ = [
    "as_dataset",
    "Dataset",
    "from_arrays",
    "teacher_student",
    "teacher_outputs",
    "random_teacher",
    "load_npz",
    "load_csv",
    "load_digits",
    "train_test_split",
    "from_recipe",
    "DIGITS_SHA256",
    "DIGITS_TARGETS",
    "DIGITS_PREPROCESSING",
]

#: sha256 of the packaged file ``meanfield/datasets/digits.npz`` (written by ``data/make_digits.py``).
DIGITS_SHA256 = "d14b530eae01285e72e3b71a2469c6d8208dfef50364a3d66f07b59850836895"
#: Named targets of :func:`load_digits` (a pair ``(i, j)`` of distinct digits is also accepted).
DIGITS_TARGETS = ("parity", "binary01", "digit")
#: Input preprocessings of :func:`load_digits`.
DIGITS_PREPROCESSING = ("standardize", "sphere", "unit", "raw")

_INPUTS = ("gaussian", "sphere")
_BLOCK = 8192  # rows of X per block when evaluating the teacher: memory O(_BLOCK * k)


class Dataset(NamedTuple):
    """A training set, an optional test set, and how to rebuild them.

    Attributes
    ----------
    X : ndarray, shape (n, d)
        Training inputs, C-contiguous float64 (or float32 when asked for).
    y : ndarray, shape (n,)
        Training targets, same dtype as ``X``.
    X_test : ndarray, shape (n_test, d), or None
        Test inputs.
    y_test : ndarray, shape (n_test,), or None
        Test targets.
    name : str
        Short name for outputs and figure legends.
    recipe : dict or None
        JSON-serialisable description; :func:`from_recipe` rebuilds the data set from it. ``kind`` is one of
        ``"arrays"`` (not rebuildable: only a sha256 of the arrays is kept), ``"teacher_student"``,
        ``"npz"``, ``"csv"``, ``"digits"``, ``"split"``.
    teacher : ndarray, shape (k, p), or None
        Teacher particles :math:`(a^*_k, w^*_k[, b^*_k])` of a teacher-student data set, float64;
        None for other data.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: Optional[np.ndarray] = None
    y_test: Optional[np.ndarray] = None
    name: str = "arrays"
    recipe: Optional[dict] = None
    teacher: Optional[np.ndarray] = None

    @property
    def n(self) -> int:
        """Number of training points."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.X.shape[1])

    @property
    def n_test(self) -> int:
        """Number of test points (0 without a test set)."""
        return 0 if self.X_test is None else int(self.X_test.shape[0])

    def risks(self, theta, model) -> dict:
        r"""The risks of the network ``theta`` on this data set, the one way a flow's risks are evaluated.

        Returns
        -------
        dict
            ``train_loss`` :math:`= \frac1{2n}\sum_i (f(x_i) - y_i)^2` and, with a test set, ``test_loss``
            (the same on the test points), each through :func:`meanfield.model.risk`.
        """
        from .model import risk

        out = {"train_loss": risk(theta, self.X, self.y, model)}
        if self.n_test:
            out["test_loss"] = risk(theta, self.X_test, self.y_test, model)
        return out


def as_dataset(data) -> Dataset:
    """A :class:`Dataset` as it is, or a pair ``(X, y)`` wrapped by :func:`from_arrays`."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return from_arrays(*data)
    raise ConfigError("data", type(data).__name__, "a meanfield.data.Dataset or a pair (X, y)")


# ----------------------------------------------------------------------------------------------------------
# validation helpers


class _Shown(str):
    """A description that ConfigError prints without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _config_fail(key, shown, allowed):
    raise ConfigError(key, _Shown(shown), allowed)


def _file_fail(path):
    def fail(key, shown, allowed):
        raise FileFormatError(path, f"{key} is {shown}; expected {allowed}")

    return fail


def _describe(a) -> str:
    return f"an array of shape {tuple(a.shape)}"


def _as_float(key, value, dtype, fail):
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists and the like
        fail(key, f"not an array ({type(value).__name__})", "a real numeric array")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        fail(key, f"an array of dtype {a.dtype}", "a real numeric array")
    if np.issubdtype(a.dtype, np.complexfloating):
        fail(key, f"an array of dtype {a.dtype}", "real numbers, not complex")
    return np.ascontiguousarray(a, dtype=dtype)


def _first_bad(a):
    bad = np.argwhere(~np.isfinite(a))[0]
    kind = "NaN" if np.isnan(a[tuple(bad)]) else "inf"
    where = ", ".join(str(int(i)) for i in bad)
    return f"{_describe(a)} with {kind} at [{where}]"


def _check_xy(X, y, X_test, y_test, dtype, fail, names=("X", "y", "X_test", "y_test")):
    kx, ky, kxt, kyt = names
    X = _as_float(kx, X, dtype, fail)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        fail(kx, _describe(X), "a 2-D array of shape (n, d) with n >= 1, d >= 1")
    y = _check_target(ky, y, X.shape[0], kx, dtype, fail)
    if not np.all(np.isfinite(X)):
        fail(kx, _first_bad(X), "finite numbers (no NaN or inf)")
    if (X_test is None) != (y_test is None):
        missing, given = (kxt, kyt) if X_test is None else (kyt, kxt)
        fail(missing, "None", f"both {kxt} and {kyt}, or neither ({given} was given)")
    if X_test is not None:
        X_test = _as_float(kxt, X_test, dtype, fail)
        if X_test.ndim != 2 or X_test.shape[0] < 1 or X_test.shape[1] != X.shape[1]:
            fail(kxt, _describe(X_test), f"a 2-D array of shape (n_test, {X.shape[1]}) with n_test >= 1 "
                 f"(d = {X.shape[1]} as in {kx})")
        y_test = _check_target(kyt, y_test, X_test.shape[0], kxt, dtype, fail)
        if not np.all(np.isfinite(X_test)):
            fail(kxt, _first_bad(X_test), "finite numbers (no NaN or inf)")
    return X, y, X_test, y_test


def _check_target(key, y, n, xkey, dtype, fail):
    y = _as_float(key, y, dtype, fail)
    if y.ndim == 2 and y.shape[1] == 1:
        y = np.ascontiguousarray(y[:, 0])
    if y.ndim != 1 or y.shape[0] != n:
        fail(key, _describe(y), f"shape ({n},) or ({n}, 1): one scalar target per row of {xkey}")
    if not np.all(np.isfinite(y)):
        fail(key, _first_bad(y), "finite numbers (no NaN or inf)")
    return y


def _sha256_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# user arrays


def from_arrays(X, y, X_test=None, y_test=None, name: str = "arrays", dtype="float64") -> Dataset:
    """A data set from arrays given by the user, checked and converted.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Training inputs, real and finite.
    y : array_like, shape (n,) or (n, 1)
        Training targets, real and finite.
    X_test : array_like, shape (n_test, d), optional
        Test inputs; given together with ``y_test``.
    y_test : array_like, shape (n_test,) or (n_test, 1), optional
        Test targets.
    name : str
        Name recorded in outputs.
    dtype : {"float64", "float32"}
        Floating type of the stored arrays.

    Returns
    -------
    Dataset
        C-contiguous copies (no copy when the input already is one) with ``recipe = {"kind": "arrays",
        "sha256": ..., "n": n, "d": d, "n_test": n_test, "dtype": dtype}``, where the sha256 is taken over
        the converted arrays; such a data set cannot be rebuilt from its recipe, only recognised.

    Raises
    ------
    ConfigError
        On a non-2-D ``X``, a target whose length differs from the number of rows, a test set whose
        dimension differs, only one of ``X_test``/``y_test``, non-numeric data, or NaN/inf.

    Examples
    --------
    >>> ds = from_arrays([[0.0, 1.0], [1.0, 0.0]], [1.0, -1.0])
    >>> ds.X.shape, ds.y.dtype.name, ds.n_test
    ((2, 2), 'float64', 0)
    """
    dname = check_dtype("dtype", dtype)
    X, y, X_test, y_test = _check_xy(X, y, X_test, y_test, DTYPES[dname], _config_fail)
    recipe = {
        "kind": "arrays",
        "name": str(name),
        "sha256": _sha256_arrays(X, y, X_test, y_test),
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "n_test": 0 if X_test is None else int(X_test.shape[0]),
        "dtype": dname,
    }
    return Dataset(X, y, X_test, y_test, str(name), recipe, None)


# ----------------------------------------------------------------------------------------------------------
# teacher-student


def _np_sigma(activation: Activation):
    """Vectorised :math:`\\sigma` matching the compiled scalar ``sigma(code, z)`` of each built-in."""
    import scipy.special as sp

    table = {
        "identity": lambda z: z,
        "relu": lambda z: np.maximum(z, 0.0),
        "erf": sp.erf,
        "tanh": np.tanh,
        "sigmoid": sp.expit,
        "softplus": lambda z: np.logaddexp(0.0, z),
        "quadratic": lambda z: z * z,
    }
    if not activation.is_custom and activation.name in table:
        return table[activation.name]
    return np.vectorize(activation.sigma, otypes=[np.float64])


def teacher_outputs(teacher, X, activation="relu") -> np.ndarray:
    r"""Outputs :math:`f^*(x_i)` of a teacher network, without the :math:`1/K` factor of a student.

    Parameters
    ----------
    teacher : array_like, shape (k, p)
        Teacher particles :math:`(a^*_k, w^*_k[, b^*_k])`, ``p = d + 1`` (no bias) or ``d + 2`` (bias).
    X : array_like, shape (n, d)
        Inputs.
    activation : str or Activation
        :math:`\sigma`, a name of ``meanfield.activations.ACTIVATIONS`` or a custom activation.

    Returns
    -------
    ndarray, shape (n,), float64

    Notes
    -----
    .. math:: f^*(x) = \sum_{k=1}^{K} a^*_k\,\sigma\!\left(w^*_k\cdot x/\sqrt d + b^*_k\right)

    Evaluated in blocks of rows so that memory stays :math:`O(k)` per row block, never :math:`O(nk)`
    for large n.
    """
    act = get_activation(activation)
    X = _as_float("X", X, np.float64, _config_fail)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        _config_fail("X", _describe(X), "a 2-D array of shape (n, d) with n >= 1, d >= 1")
    theta, _ = _check_teacher(teacher, X.shape[1], None)
    return _teacher_outputs(theta, X, act)


def _teacher_outputs(theta, X, act):
    n, d = X.shape
    sig = _np_sigma(act)
    a = theta[:, 0]
    W = theta[:, 1 : 1 + d]
    b = theta[:, 1 + d] if theta.shape[1] == d + 2 else np.zeros(theta.shape[0])
    out = np.empty(n)
    scale = 1.0 / math.sqrt(d)
    for s in range(0, n, _BLOCK):
        z = (X[s : s + _BLOCK] @ W.T) * scale + b
        out[s : s + _BLOCK] = sig(z) @ a
    return out


def _check_teacher(teacher, d, bias):
    T = _as_float("teacher", teacher, np.float64, _config_fail)
    if T.ndim != 2 or T.shape[0] < 1 or T.shape[1] not in (d + 1, d + 2):
        _config_fail("teacher", _describe(T), f"a 2-D array of shape (k, {d + 1}) (columns [a, w_1..w_{d}]) "
                     f"or (k, {d + 2}) (with a last bias column b), k >= 1")
    if not np.all(np.isfinite(T)):
        _config_fail("teacher", _first_bad(T), "finite numbers (no NaN or inf)")
    has_bias = T.shape[1] == d + 2
    if bias is not None and bool(bias) != has_bias:
        _config_fail("bias", repr(bias), f"{has_bias} or None for a teacher of shape {T.shape} (d = {d}): "
                     "the bias column is inferred from the teacher's shape")
    return T, has_bias


def random_teacher(d: int, k: int = 1, bias: bool = False, seed: int = 0) -> np.ndarray:
    r"""The random teacher :func:`teacher_student` draws when none is given.

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    k : int
        Number of teacher neurons, >= 1.
    bias : bool
        Whether to add a bias column.
    seed : int
        Seed, >= 0; the teacher is drawn from the first of three streams spawned from
        ``numpy.random.SeedSequence(seed)`` (the other two draw the training and test sets).

    Returns
    -------
    ndarray, shape (k, d + 1) or (k, d + 2)
        Rows :math:`(a^*_k, w^*_k[, b^*_k])`.

    Notes
    -----
    :math:`w^*_k` is uniform on the sphere of radius :math:`\sqrt d`, so :math:`|w^*_k|^2/d = 1` and
    :math:`w^*_k\cdot x/\sqrt d \sim N(0, 1)` for Gaussian inputs; :math:`a^*_k = s_k/\sqrt k` with
    independent random signs :math:`s_k = \pm 1`, so that :math:`f^*` is of order one for every k
    (:math:`\sum_k a_k^{*2} = 1`) and never accidentally small; :math:`b^*_k \sim N(0, 1)` with a bias.
    """
    d = check_int("d", d, low=1)
    k = check_int("k", k, low=1)
    seed = check_int("seed", seed, low=0)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])
    return _draw_teacher(rng, d, k, bool(bias))


def _draw_teacher(rng, d, k, bias):
    signs = rng.integers(0, 2, size=k) * 2 - 1
    g = rng.standard_normal((k, d))
    W = g * (math.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True))
    cols = [signs[:, None] / math.sqrt(k), W]
    if bias:
        cols.append(rng.standard_normal((k, 1)))
    return np.ascontiguousarray(np.hstack(cols), dtype=np.float64)


def _draw_inputs(rng, n, d, input):
    g = rng.standard_normal((n, d))
    if input == "sphere":
        g *= math.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True)
    return g


def teacher_student(
    d: int,
    n_train: int,
    n_test: int = 0,
    *,
    k: Optional[int] = None,
    activation="relu",
    teacher=None,
    input: str = "gaussian",
    noise: float = 0.0,
    noisy_test: bool = False,
    bias: Optional[bool] = None,
    seed: int = 0,
    dtype="float64",
    name: Optional[str] = None,
) -> Dataset:
    r"""Synthetic data labelled by a two-layer teacher network.

    Parameters
    ----------
    d : int
        Input dimension, >= 1.
    n_train : int
        Number of training points, >= 1.
    n_test : int
        Number of test points, >= 0 (0: no test set).
    k : int, optional
        Number of teacher neurons, >= 1. Default: the number of rows of ``teacher``, or 1 for a random one.
    activation : str or Activation
        Teacher activation :math:`\sigma` (a name of ``meanfield.activations.ACTIVATIONS``).
    teacher : array_like, shape (k, d + 1) or (k, d + 2), optional
        Teacher particles :math:`(a^*_k, w^*_k[, b^*_k])` in the layout of docs/conventions.md. Default: a
        random teacher, see :func:`random_teacher`.
    input : {"gaussian", "sphere"}
        :math:`x \sim N(0, I_d)`, or :math:`x` uniform on the sphere of radius :math:`\sqrt d`.
    noise : float
        Standard deviation of the Gaussian label noise on the training targets, >= 0.
    noisy_test : bool
        Whether the test targets carry the same noise. Default False: test targets are :math:`f^*(x)`, so the
        test risk is the excess risk :math:`\frac12 E(f - f^*)^2`.
    bias : bool, optional
        Whether the teacher has biases. Default: inferred from the shape of ``teacher``; False for a random
        teacher. Must agree with the shape of a given teacher.
    seed : int
        Seed, >= 0. Three independent streams are spawned from ``numpy.random.SeedSequence(seed)``: the
        teacher, the training set (inputs, then noise), the test set (inputs, then noise). So the training set
        does not change with ``n_test`` or ``noise`` (its inputs), and the teacher not with ``n_train``.
    dtype : {"float64", "float32"}
        Floating type of the stored arrays. Inputs are drawn in float64 and rounded; targets are computed from
        the rounded inputs.
    name : str, optional
        Default ``"teacher_student"``.

    Returns
    -------
    Dataset
        With ``teacher`` the (k, p) float64 teacher particles and ``recipe`` holding every argument above
        (a given teacher as nested lists; the activation by name).

    Raises
    ------
    ConfigError
        For a non-integer or out-of-range size, an unknown ``input`` or activation, a negative or non-finite
        ``noise``, a teacher of the wrong shape or with NaN, or a ``k``/``bias`` that contradicts it.

    Notes
    -----
    .. math:: y_i = f^*(x_i) + \text{noise}\,\xi_i, \qquad
              f^*(x) = \sum_{k=1}^{K} a^*_k\,\sigma\!\left(w^*_k\cdot x/\sqrt d + b^*_k\right),
              \qquad \xi_i \sim N(0, 1)

    There is no :math:`1/K` in :math:`f^*`. A mean-field student :math:`\frac1m\sum_j a_j\sigma(\dots)` matches
    it exactly by putting a fraction of its particles at each :math:`(K a^*_k, w^*_k, b^*_k)`.

    Examples
    --------
    >>> ds = teacher_student(d=5, n_train=100, n_test=20, k=2, seed=1)
    >>> ds.X.shape, ds.X_test.shape, ds.teacher.shape
    ((100, 5), (20, 5), (2, 6))
    """
    d = check_int("d", d, low=1)
    n_train = check_int("n_train", n_train, low=1)
    n_test = check_int("n_test", n_test, low=0)
    seed = check_int("seed", seed, low=0)
    dname = check_dtype("dtype", dtype)
    act = get_activation(activation)
    check_choice("input", input, _INPUTS)
    noise_f = check_number("noise", noise, low=0, allowed="a finite standard deviation >= 0")
    check_bool("noisy_test", noisy_test)
    if bias is not None:
        check_bool("bias", bias)

    streams = np.random.SeedSequence(seed).spawn(3)
    if teacher is None:
        k = 1 if k is None else check_int("k", k, low=1)
        theta = _draw_teacher(np.random.default_rng(streams[0]), d, k, bool(bias))
        given = None
    else:
        theta, has_bias = _check_teacher(teacher, d, bias)
        if k is not None and check_int("k", k, low=1) != theta.shape[0]:
            raise ConfigError("k", k, f"{theta.shape[0]} (the number of rows of teacher) or None")
        k, bias, given = theta.shape[0], has_bias, theta.tolist()
    theta.setflags(write=False)

    npdt = DTYPES[dname]

    def draw(stream, n, with_noise):
        rng = np.random.default_rng(stream)
        X = np.ascontiguousarray(_draw_inputs(rng, n, d, input), dtype=npdt)
        f = _teacher_outputs(theta, X.astype(np.float64), act)
        if with_noise and noise_f > 0.0:
            f = f + noise_f * rng.standard_normal(n)
        return X, np.ascontiguousarray(f, dtype=npdt)

    X, y = draw(streams[1], n_train, True)
    X_test = y_test = None
    if n_test > 0:
        X_test, y_test = draw(streams[2], n_test, bool(noisy_test))
    name = "teacher_student" if name is None else str(name)
    recipe = {
        "kind": "teacher_student",
        "name": name,
        "d": d,
        "n_train": n_train,
        "n_test": n_test,
        "k": int(k),
        "activation": act.name,
        "custom_activation": bool(act.is_custom),
        "teacher": given,
        "input": input,
        "noise": noise_f,
        "noisy_test": bool(noisy_test),
        "bias": bool(bias),
        "seed": seed,
        "dtype": dname,
    }
    return Dataset(X, y, X_test, y_test, name, recipe, theta)


# ----------------------------------------------------------------------------------------------------------
# splitting


def _split_indices(n, n_test, seed):
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _check_n_test(n_test, n):
    n_test = check_int("n_test", n_test, low=0)
    if n_test > n - 1:
        raise ConfigError("n_test", n_test, f"an integer from 0 to {n - 1} (the data set has {n} points and at "
                          "least one must stay for training)")
    return n_test


def train_test_split(dataset: Dataset, n_test: int, seed: int = 0) -> Dataset:
    """Hold out ``n_test`` random points of a data set as its test set.

    Parameters
    ----------
    dataset : Dataset
        Without a test set.
    n_test : int
        Number of held-out points, from 1 to ``dataset.n - 1``.
    seed : int
        Seed of the permutation (``numpy.random.default_rng(seed).permutation(n)``; its first ``n_test``
        indices are the test set). Both parts keep the original order of the rows.

    Returns
    -------
    Dataset
        With ``recipe = {"kind": "split", "base": dataset.recipe, "n_test": n_test, "seed": seed}``.
    """
    if not isinstance(dataset, Dataset):
        raise ConfigError("dataset", type(dataset).__name__, "a meanfield.data.Dataset")
    if dataset.X_test is not None:
        raise ConfigError("dataset", _Shown(f"{dataset.name!r} with a test set of {dataset.n_test} points"),
                          "a data set without a test set")
    n_test = _check_n_test(n_test, dataset.n)
    if n_test < 1:
        raise ConfigError("n_test", n_test, f"an integer from 1 to {dataset.n - 1}")
    seed = check_int("seed", seed, low=0)
    tr, te = _split_indices(dataset.n, n_test, seed)
    recipe = {"kind": "split", "name": dataset.name, "base": dataset.recipe, "n_test": n_test, "seed": seed}
    return Dataset(
        np.ascontiguousarray(dataset.X[tr]), np.ascontiguousarray(dataset.y[tr]),
        np.ascontiguousarray(dataset.X[te]), np.ascontiguousarray(dataset.y[te]),
        dataset.name, recipe, dataset.teacher,
    )


def _maybe_split(ds, n_test, seed, recipe):
    """Split inside a loader: the loader's own recipe records n_test and seed."""
    n_test = _check_n_test(n_test, ds.n)
    seed = check_int("seed", seed, low=0)
    if n_test > 0:
        if ds.X_test is not None:
            raise ConfigError("n_test", n_test, "0 for a file that already holds a test set")
        ds = train_test_split(ds, n_test, seed)
    return ds._replace(recipe=recipe)


# ----------------------------------------------------------------------------------------------------------
# files


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError("path", path, "a file path (str or os.PathLike)")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileFormatError(path, "no such file" if not os.path.exists(path) else "not a regular file")
    return path


def load_npz(
    path,
    x_key: str = "X",
    y_key: str = "y",
    x_test_key: Optional[str] = "X_test",
    y_test_key: Optional[str] = "y_test",
    *,
    n_test: int = 0,
    seed: int = 0,
    name: Optional[str] = None,
    dtype="float64",
) -> Dataset:
    """A data set from arrays stored in a ``.npz`` file (``numpy.savez``).

    Parameters
    ----------
    path : str or os.PathLike
        The file. Object arrays are refused (``allow_pickle=False``).
    x_key, y_key : str
        Names of the training inputs, shape (n, d), and targets, shape (n,) or (n, 1).
    x_test_key, y_test_key : str or None
        Names of a test set. With the defaults ``"X_test"``/``"y_test"`` the test set is optional (read when
        both arrays are present); names given explicitly must be present; None ignores it.
    n_test : int
        When > 0, hold out that many random training points as the test set (only for a file without one).
    seed : int
        Seed of that split, see :func:`train_test_split`.
    name : str, optional
        Default: the file name without extension.
    dtype : {"float64", "float32"}

    Returns
    -------
    Dataset
        With ``recipe = {"kind": "npz", "path": <absolute path>, "sha256": <of the file>, ...arguments}``.

    Raises
    ------
    FileFormatError
        For a missing file, a file that is not a ``.npz`` archive, a missing array (the message lists the
        arrays present), or arrays of the wrong shape or with NaN/inf.
    ConfigError
        For bad arguments.
    """
    path = _check_path(path)
    dname = check_dtype("dtype", dtype)
    for key, val in (("x_key", x_key), ("y_key", y_key)):
        if not isinstance(val, str):
            raise ConfigError(key, val, "the name of an array in the file (str)")
    explicit = {x_test_key, y_test_key} != {"X_test", "y_test"}
    not_npz = "is not a .npz archive of numpy arrays (numpy.savez)"
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - OSError, ValueError (pickled data), zipfile.BadZipFile, EOFError
        raise FileFormatError(path, not_npz) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise FileFormatError(path, not_npz + f"; it holds a single array (.npy), not named arrays")
    with npz:
        files = list(npz.files)
        test = x_test_key is not None and y_test_key is not None
        if test and not explicit:
            test = x_test_key in files and y_test_key in files
        wanted = [x_key, y_key] + ([x_test_key, y_test_key] if test else [])
        arrays = {}
        for key in wanted:
            if key not in files:
                listed = ", ".join(repr(f) for f in files) or "none"
                raise FileFormatError(path, f"has no array {key!r} (arrays in the file: {listed}); "
                                      "pass the right name as x_key / y_key / x_test_key / y_test_key")
            try:
                arrays[key] = npz[key]
            except ValueError:
                raise FileFormatError(path, f"array {key!r} holds Python objects, which are not loaded "
                                      "(allow_pickle=False); store numeric arrays") from None
            except Exception:  # noqa: BLE001 - a damaged member of the archive
                raise FileFormatError(path, f"array {key!r} could not be read: " + not_npz) from None
    names = (f"array {x_key!r}", f"array {y_key!r}", f"array {x_test_key!r}", f"array {y_test_key!r}")
    X, y, X_test, y_test = _check_xy(arrays[x_key], arrays[y_key], arrays.get(x_test_key) if test else None,
                                     arrays.get(y_test_key) if test else None, DTYPES[dname],
                                     _file_fail(path), names)
    name = os.path.splitext(os.path.basename(path))[0] if name is None else str(name)
    recipe = {
        "kind": "npz", "name": name, "path": os.path.abspath(path), "sha256": _sha256_file(path),
        "x_key": x_key, "y_key": y_key, "x_test_key": x_test_key, "y_test_key": y_test_key,
        "n_test": n_test, "seed": seed, "dtype": dname,
    }
    ds = Dataset(X, y, X_test, y_test, name, None, None)
    return _maybe_split(ds, n_test, seed, recipe)


def _parse_float(cell):
    try:
        v = float(cell)
    except ValueError:
        return None
    return v


def load_csv(
    path,
    target_column=-1,
    *,
    header="infer",
    delimiter: str = ",",
    n_test: int = 0,
    seed: int = 0,
    name: Optional[str] = None,
    dtype="float64",
) -> Dataset:
    """A data set from a table of numbers in a text file: one column is the target, the others the input.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Blank lines and lines starting with ``#`` are skipped.
    target_column : int or str
        Index of the target column (negative counts from the end) or its name in the header.
    header : {"infer", True, False}
        Whether the first row holds column names. ``"infer"``: it does when one of its cells is not a number.
    delimiter : str
        One character separating the cells.
    n_test : int
        When > 0, hold out that many random rows as the test set, see :func:`train_test_split`.
    seed : int
        Seed of that split.
    name : str, optional
        Default: the file name without extension.
    dtype : {"float64", "float32"}

    Returns
    -------
    Dataset
        ``X`` holds the other columns in file order; ``recipe = {"kind": "csv", "path": ..., "sha256": ...,
        ...arguments}``.

    Raises
    ------
    FileFormatError
        For a missing or empty file, rows of different lengths, a cell that is not a number (line and column
        are named), NaN/inf, or a target column that does not exist.
    ConfigError
        For bad arguments.
    """
    path = _check_path(path)
    dname = check_dtype("dtype", dtype)
    if header not in ("infer", True, False):
        raise ConfigError("header", header, "'infer', True or False")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError("delimiter", delimiter, "a single character such as ',' or ';' or '\\t'")
    if isinstance(target_column, (bool, np.bool_)) or not isinstance(target_column, (int, np.integer, str)):
        raise ConfigError("target_column", target_column, "a column index (int) or a column name (str)")
    try:
        with open(path, newline="") as f:
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(f, delimiter=delimiter))]
    except UnicodeDecodeError:
        raise FileFormatError(path, "is not a text file (could not decode it as UTF-8)") from None
    except csv.Error as exc:
        raise FileFormatError(path, f"is not a valid delimited text file ({exc})") from None
    rows = [(i, [c.strip() for c in r]) for i, r in rows
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise FileFormatError(path, "holds no rows of data")
    columns = None
    first = rows[0][1]
    has_header = header is True or (header == "infer" and any(_parse_float(c) is None for c in first))
    if has_header:
        columns = first
        rows = rows[1:]
        if not rows:
            raise FileFormatError(path, "holds a header but no rows of data")
    width = len(columns) if columns is not None else len(rows[0][1])
    if width < 2:
        raise FileFormatError(path, f"has {width} column; expected at least 2 (inputs and a target)")
    data = np.empty((len(rows), width))
    for r, (line, cells) in enumerate(rows):
        if len(cells) != width:
            raise FileFormatError(path, f"line {line} has {len(cells)} cells; expected {width} like the "
                                  f"{'header' if columns is not None else 'first row'}")
        for c, cell in enumerate(cells):
            v = _parse_float(cell)
            if v is None or not math.isfinite(v):
                shown = "an empty cell" if cell == "" else f"{cell!r}"
                raise FileFormatError(path, f"line {line}, column {c + 1} holds {shown}; expected a finite number")
            data[r, c] = v
    if isinstance(target_column, str):
        if columns is None:
            raise FileFormatError(path, f"has no header, so target_column={target_column!r} cannot be found; "
                                  "pass a column index or header=True")
        if target_column not in columns:
            raise FileFormatError(path, f"has no column {target_column!r} (columns: "
                                  + ", ".join(repr(c) for c in columns) + ")")
        t = columns.index(target_column)
    else:
        t = int(target_column)
        if not -width <= t < width:
            raise FileFormatError(path, f"has {width} columns, so target_column={t} does not exist; expected "
                                  f"an index from {-width} to {width - 1}")
        t %= width
    keep = [c for c in range(width) if c != t]
    names = ("input columns", "target column", "", "")
    X, y, _, _ = _check_xy(data[:, keep], data[:, t], None, None, DTYPES[dname], _file_fail(path), names)
    name = os.path.splitext(os.path.basename(path))[0] if name is None else str(name)
    recipe = {
        "kind": "csv", "name": name, "path": os.path.abspath(path), "sha256": _sha256_file(path),
        "target_column": target_column if isinstance(target_column, str) else int(target_column),
        "header": header, "delimiter": delimiter, "n_test": n_test, "seed": seed, "dtype": dname,
    }
    ds = Dataset(X, y, None, None, name, None, None)
    return _maybe_split(ds, n_test, seed, recipe)


# ----------------------------------------------------------------------------------------------------------
# the shipped digits


def _digits_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "digits.npz")


def _digits_raw():
    """Raw pixels (1797, 64) uint8 in 0..16 and digit labels (1797,) uint8, checked against DIGITS_SHA256."""
    path = _digits_path()
    if not os.path.isfile(path):
        raise FileFormatError(path, "the packaged digits file is missing: reinstall meanfield, or run "
                              "python data/make_digits.py in a source checkout")
    sha = _sha256_file(path)
    if sha != DIGITS_SHA256:
        raise FileFormatError(path, f"has sha256 {sha}, not the {DIGITS_SHA256} of the file meanfield "
                              "ships: it was changed or damaged; regenerate it with data/make_digits.py")
    with np.load(path, allow_pickle=False) as npz:
        return npz["X"], npz["y"]


def _check_digits_target(target):
    if isinstance(target, str):
        if target not in DIGITS_TARGETS:
            raise ConfigError("target", target, "one of " + ", ".join(repr(t) for t in DIGITS_TARGETS)
                              + " or a pair (i, j) of distinct digits 0..9")
        return target, (0, 1) if target == "binary01" else None
    if (isinstance(target, (tuple, list)) and len(target) == 2
            and all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 0 <= t <= 9 for t in target)
            and target[0] != target[1]):
        return [int(target[0]), int(target[1])], (int(target[0]), int(target[1]))
    raise ConfigError("target", target, "one of " + ", ".join(repr(t) for t in DIGITS_TARGETS)
                      + " or a pair (i, j) of distinct digits 0..9")


def load_digits(
    target="parity",
    n_test: int = 0,
    seed: int = 0,
    preprocessing: str = "standardize",
    dtype="float64",
) -> Dataset:
    r"""The UCI handwritten digits shipped with meanfield: 1 797 images of 8x8 pixels (d = 64).

    Source, licence and conversion: data/README.md. The packaged file holds the raw pixels (integers 0..16)
    and digit labels; the target and the preprocessing are applied here.

    Parameters
    ----------
    target : {"parity", "binary01", "digit"} or (int, int)
        ``"parity"``: :math:`y = +1` for an even digit, :math:`-1` for an odd one (all 1 797 images).
        ``(i, j)``: only the images of digits i and j, :math:`y = -1` for i and :math:`+1` for j.
        ``"binary01"``: the same as ``(0, 1)`` (360 images). ``"digit"``: the digit value 0..9 as a
        regression target (all images).
    n_test : int
        Number of random images held out as the test set (0: none).
    seed : int
        Seed of that split, see :func:`train_test_split`.
    preprocessing : {"standardize", "sphere", "unit", "raw"}
        With :math:`\mu_j, s_j` the mean and standard deviation of pixel j over the *training* images:
        ``"standardize"``: :math:`x_j = (p_j - \mu_j)/s_j`, and :math:`x_j = 0` for a pixel constant on the
        training images, so the training mean of :math:`|x|^2` is the number of non-constant pixels
        (61 of 64 on the full data set), close to d. ``"sphere"``: :math:`x = \sqrt d\,(p - \mu)/|p - \mu|`,
        so :math:`|x|^2 = d` exactly, as for ``teacher_student(input="sphere")``. ``"unit"``: :math:`p/16`
        in [0, 1]. ``"raw"``: the integer pixels 0..16 as floats.
    dtype : {"float64", "float32"}

    Returns
    -------
    Dataset
        Named ``"digits-<target>"``, with ``recipe = {"kind": "digits", "sha256": DIGITS_SHA256, ...}``.

    Raises
    ------
    ConfigError
        For an unknown target or preprocessing, or an out-of-range ``n_test``.
    FileFormatError
        When the packaged file is missing or its sha256 is not :data:`DIGITS_SHA256`.
    """
    target, pair = _check_digits_target(target)
    if preprocessing not in DIGITS_PREPROCESSING:
        raise ConfigError("preprocessing", preprocessing,
                          "one of " + ", ".join(repr(p) for p in DIGITS_PREPROCESSING))
    dname = check_dtype("dtype", dtype)
    seed = check_int("seed", seed, low=0)
    P, labels = _digits_raw()
    P = P.astype(np.float64)
    labels = labels.astype(np.int64)
    if pair is not None:
        keep = (labels == pair[0]) | (labels == pair[1])
        P, labels = P[keep], labels[keep]
        y = np.where(labels == pair[1], 1.0, -1.0)
    elif target == "parity":
        y = np.where(labels % 2 == 0, 1.0, -1.0)
    else:
        y = labels.astype(np.float64)
    n_test = _check_n_test(n_test, P.shape[0])
    if n_test > 0:
        tr, te = _split_indices(P.shape[0], n_test, seed)
        parts = [(P[tr], y[tr]), (P[te], y[te])]
    else:
        parts = [(P, y)]
    d = P.shape[1]
    train = parts[0][0]
    mu = train.mean(axis=0)
    s = train.std(axis=0)
    out = []
    for Pi, yi in parts:
        if preprocessing == "standardize":
            Xi = np.divide(Pi - mu, s, out=np.zeros_like(Pi), where=s > 0)
        elif preprocessing == "sphere":
            C = Pi - mu
            r = np.linalg.norm(C, axis=1, keepdims=True)
            Xi = np.divide(C * math.sqrt(d), r, out=np.zeros_like(C), where=r > 0)
        elif preprocessing == "unit":
            Xi = Pi / 16.0
        else:
            Xi = Pi
        out.append((np.ascontiguousarray(Xi, dtype=DTYPES[dname]), np.ascontiguousarray(yi, dtype=DTYPES[dname])))
    X, y = out[0]
    X_test, y_test = out[1] if n_test > 0 else (None, None)
    label = target if isinstance(target, str) else f"{target[0]}v{target[1]}"
    name = f"digits-{label}"
    recipe = {
        "kind": "digits", "name": name, "sha256": DIGITS_SHA256, "target": target, "n_test": n_test,
        "seed": seed, "preprocessing": preprocessing, "dtype": dname,
    }
    return Dataset(X, y, X_test, y_test, name, recipe, None)


# ----------------------------------------------------------------------------------------------------------
# rebuilding from a recipe


def from_recipe(recipe) -> Dataset:
    """Rebuild a data set from its ``recipe`` (a dict, or its JSON text).

    Parameters
    ----------
    recipe : dict or str
        ``Dataset.recipe``, possibly after a round trip through JSON (as stored in an HDF5 file).

    Returns
    -------
    Dataset
        Bitwise equal to the original for ``teacher_student``, ``digits``, ``split`` and files that did not
        change.

    Raises
    ------
    ConfigError
        For a recipe of kind ``"arrays"`` (user arrays cannot be regenerated: only their sha256 is kept),
        a custom activation (its functions are not stored), or an unknown kind.
    FileFormatError
        When a file's sha256 no longer matches the recipe, or the file is gone.
    """
    if isinstance(recipe, str):
        try:
            recipe = json.loads(recipe)
        except json.JSONDecodeError:
            raise ConfigError("recipe", recipe, "a recipe dict or its JSON text") from None
    if not isinstance(recipe, dict) or "kind" not in recipe:
        raise ConfigError("recipe", recipe, "a dict with a 'kind' key, as in Dataset.recipe")
    try:
        return _from_recipe(dict(recipe))
    except (TypeError, KeyError) as exc:
        raise ConfigError("recipe", recipe, f"a recipe as written in Dataset.recipe ({type(exc).__name__}: "
                          f"{exc})") from None


def _from_recipe(r):
    kind = r.pop("kind")
    name = r.pop("name", None)
    if kind == "teacher_student":
        if r.pop("custom_activation", False):
            raise ConfigError("recipe.activation", r.get("activation"), "a built-in activation: a custom "
                              "activation's functions are not stored in the recipe")
        return teacher_student(name=name, **r)
    if kind in ("npz", "csv"):
        path, sha = r.pop("path"), r.pop("sha256")
        if os.path.isfile(path) and _sha256_file(path) != sha:
            raise FileFormatError(path, f"changed since the data set was made: sha256 is "
                                  f"{_sha256_file(path)}, the recipe records {sha}")
        return (load_npz if kind == "npz" else load_csv)(path, name=name, **r)
    if kind == "digits":
        sha = r.pop("sha256")
        if sha != DIGITS_SHA256:
            raise FileFormatError(_digits_path(), f"is a different version (sha256 {DIGITS_SHA256}) from "
                                  f"the one in the recipe ({sha})")
        target = r.pop("target")
        return load_digits(target=tuple(target) if isinstance(target, list) else target, **r)
    if kind == "split":
        return train_test_split(_from_recipe(dict(r["base"])), r["n_test"], r["seed"])
    if kind == "arrays":
        raise ConfigError("recipe.kind", kind, "a rebuildable kind (teacher_student, npz, csv, digits, split): "
                          "data sets from user arrays keep only a sha256; pass the arrays again")
    raise ConfigError("recipe.kind", kind, "one of teacher_student, npz, csv, digits, split")
