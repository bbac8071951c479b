"""Tests of meanfield.data: generator statistics against their exact laws, teacher labels against a
hand-written loop, file round trips, the shipped digits against their checksum (and scikit-learn's copy when
installed), and one test per bad input checking the error type and message."""

import hashlib
import json
import math
import os

import numpy as np
import pytest

from meanfield import data as D
from meanfield.activations import ACTIVATIONS, custom
from meanfield.errors import ConfigError, FileFormatError

# ---------------------------------------------------------------------------------------------------------
# slow obvious reference for the teacher network


def _scalar_sigma(name, z):
    return {
        "identity": lambda: z,
        "relu": lambda: max(z, 0.0),
        "erf": lambda: math.erf(z),
        "tanh": lambda: math.tanh(z),
        "sigmoid": lambda: 1.0 / (1.0 + math.exp(-z)),
        "softplus": lambda: math.log(1.0 + math.exp(z)),
        "quadratic": lambda: z * z,
    }[name]()


def _teacher_loop(theta, X, sigma):
    """f*(x) = sum_k a_k sigma(w_k . x / sqrt(d) + b_k), one point and one neuron at a time."""
    n, d = X.shape
    out = np.zeros(n)
    for i in range(n):
        for row in theta:
            a, w = row[0], row[1 : 1 + d]
            b = row[1 + d] if len(row) == d + 2 else 0.0
            z = sum(w[j] * X[i, j] for j in range(d)) / math.sqrt(d) + b
            out[i] += a * sigma(z)
    return out


def _same(ds1, ds2):
    for a, b in zip(ds1[:4], ds2[:4]):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------
# teacher-student generator


def test_gaussian_inputs_have_zero_mean_and_identity_covariance():
    n, d = 40_000, 6
    ds = D.teacher_student(d, n, seed=3)
    X = ds.X
    assert X.shape == (n, d) and X.dtype == np.float64 and X.flags.c_contiguous
    # each coordinate mean ~ N(0, 1/n); each sample variance has sd sqrt(2/n): 5-sigma bounds
    assert np.all(np.abs(X.mean(axis=0)) < 5 / math.sqrt(n))
    C = X.T @ X / n
    assert np.all(np.abs(np.diag(C) - 1.0) < 5 * math.sqrt(2 / n))
    off = C[~np.eye(d, dtype=bool)]
    assert np.all(np.abs(off) < 5 / math.sqrt(n))


def test_sphere_inputs_have_radius_sqrt_d_and_isotropic_second_moment():
    n, d = 30_000, 7
    ds = D.teacher_student(d, n, n_test=50, input="sphere", seed=4)
    for X in (ds.X, ds.X_test):
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), math.sqrt(d), rtol=1e-14)
    X = ds.X
    assert np.all(np.abs(X.mean(axis=0)) < 5 / math.sqrt(n))
    # x_j^2 has mean 1 and variance 2d/(d+2) for the uniform law on the sphere of radius sqrt(d)
    sd = math.sqrt(2 * d / (d + 2) / n)
    assert np.all(np.abs((X**2).mean(axis=0) - 1.0) < 5 * sd)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("bias", [False, True])
def test_teacher_labels_equal_the_network_formula(name, bias):
    rng = np.random.default_rng(11)
    d, k, n = 4, 3, 25
    teacher = rng.standard_normal((k, d + 1 + bias))
    ds = D.teacher_student(d, n, n_test=7, activation=name, teacher=teacher, seed=2)
    sig = lambda z: _scalar_sigma(name, z)  # noqa: E731
    np.testing.assert_allclose(ds.y, _teacher_loop(teacher, ds.X, sig), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ds.y_test, _teacher_loop(teacher, ds.X_test, sig), rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(ds.teacher, teacher)
    assert ds.recipe["bias"] is bias and ds.recipe["k"] == k


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_vectorised_activation_matches_the_compiled_scalar_one(name):
    z = np.linspace(-6.0, 6.0, 241)
    act = ACTIVATIONS[name]
    expected = np.array([act.sigma(float(v)) for v in z])
    np.testing.assert_allclose(D._np_sigma(act)(z), expected, rtol=2e-15, atol=1e-300)


def test_random_teacher_layout_and_norms():
    d, k = 9, 5
    T = D.random_teacher(d, k, bias=True, seed=8)
    assert T.shape == (k, d + 2)
    np.testing.assert_allclose(np.abs(T[:, 0]), 1 / math.sqrt(k), rtol=1e-15)
    np.testing.assert_allclose(np.sum(T[:, 1 : 1 + d] ** 2, axis=1), d, rtol=1e-14)
    ds = D.teacher_student(d, 10, k=k, bias=True, seed=8)
    np.testing.assert_array_equal(ds.teacher, T)
    assert not ds.teacher.flags.writeable
    assert ds.recipe["teacher"] is None  # a random teacher is rebuilt from the seed
    np.testing.assert_array_equal(D.teacher_outputs(T, ds.X), ds.y)


def test_label_noise_has_the_requested_variance_and_test_labels_are_clean():
    n, d, noise = 100_000, 3, 0.3
    ds = D.teacher_student(d, n, n_test=500, k=2, activation="tanh", noise=noise, seed=5)
    eps = ds.y - D.teacher_outputs(ds.teacher, ds.X, "tanh")
    assert abs(eps.mean()) < 5 * noise / math.sqrt(n)
    assert abs(eps.var() - noise**2) < 5 * noise**2 * math.sqrt(2 / n)
    np.testing.assert_array_equal(ds.y_test, D.teacher_outputs(ds.teacher, ds.X_test, "tanh"))
    noisy = D.teacher_student(d, n, n_test=500, k=2, activation="tanh", noise=noise, noisy_test=True, seed=5)
    np.testing.assert_array_equal(noisy.X_test, ds.X_test)
    assert np.std(noisy.y_test - ds.y_test) > 0.5 * noise


def test_reproducible_by_seed_and_streams_are_independent():
    kw = dict(k=3, noise=0.1, seed=12)
    a, b = D.teacher_student(5, 40, 10, **kw), D.teacher_student(5, 40, 10, **kw)
    _same(a, b)
    np.testing.assert_array_equal(a.teacher, b.teacher)
    c = D.teacher_student(5, 40, 10, k=3, noise=0.1, seed=13)
    assert not np.array_equal(a.X, c.X) and not np.array_equal(a.teacher, c.teacher)
    # the training set does not depend on n_test, its inputs not on the noise, the teacher not on n_train
    no_test = D.teacher_student(5, 40, 0, **kw)
    _same(no_test, a._replace(X_test=None, y_test=None))
    clean = D.teacher_student(5, 40, 10, k=3, seed=12)
    np.testing.assert_array_equal(clean.X, a.X)
    more = D.teacher_student(5, 400, 10, **kw)
    np.testing.assert_array_equal(more.teacher, a.teacher)
    np.testing.assert_array_equal(more.X_test, a.X_test)


@pytest.mark.parametrize("kw", [dict(k=4, seed=1), dict(teacher=[[1.0, 0.5, -2.0, 0.25]], input="sphere", noise=0.2),
                                dict(k=2, bias=True, activation="erf", dtype="float32", noise=0.5, noisy_test=True)])
def test_teacher_student_recipe_rebuilds_it_through_json(kw):
    ds = D.teacher_student(3, 30, 8, **kw)
    text = json.dumps(ds.recipe)
    again = D.from_recipe(json.loads(text))
    _same(again, ds)
    np.testing.assert_array_equal(again.teacher, ds.teacher)
    assert again.recipe == ds.recipe


def test_float32_labels_are_the_teacher_of_the_rounded_inputs():
    ds = D.teacher_student(4, 50, k=2, activation="erf", dtype=np.float32, seed=9)
    assert ds.X.dtype == ds.y.dtype == np.float32
    ref = D.teacher_student(4, 50, k=2, activation="erf", seed=9)
    np.testing.assert_array_equal(ds.X, ref.X.astype(np.float32))
    f = D.teacher_outputs(ds.teacher, ds.X.astype(np.float64), "erf")
    np.testing.assert_array_equal(ds.y, f.astype(np.float32))


def test_custom_activation_teacher():
    act = custom(lambda z: math.sin(z), lambda z: math.cos(z), name="sin")
    teacher = np.array([[0.7, 1.0, -0.5], [-1.2, 0.3, 2.0]])
    ds = D.teacher_student(2, 15, activation=act, teacher=teacher)
    np.testing.assert_allclose(ds.y, _teacher_loop(teacher, ds.X, math.sin), rtol=1e-13)
    with pytest.raises(ConfigError, match="recipe.activation"):
        D.from_recipe(ds.recipe)


# ---------------------------------------------------------------------------------------------------------
# arrays and files


def test_from_arrays_converts_and_hashes():
    X = np.arange(12, dtype=np.int32).reshape(6, 2)[:, ::-1]  # not contiguous, integer
    y = np.arange(6).reshape(6, 1)
    ds = D.from_arrays(X, y, X[:2], y[:2, 0], name="toy")
    assert ds.X.flags.c_contiguous and ds.X.dtype == np.float64 and ds.y.shape == (6,)
    np.testing.assert_array_equal(ds.X, X)
    assert (ds.n, ds.d, ds.n_test, ds.name) == (6, 2, 2, "toy")
    assert ds.recipe["kind"] == "arrays" and len(ds.recipe["sha256"]) == 64
    assert D.from_arrays(X, y, X[:2], y[:2, 0]).recipe["sha256"] == ds.recipe["sha256"]
    assert D.from_arrays(X + 1, y, X[:2], y[:2, 0]).recipe["sha256"] != ds.recipe["sha256"]
    f32 = D.from_arrays(X, y, dtype="float32")
    assert f32.X.dtype == f32.y.dtype == np.float32
    with pytest.raises(ConfigError, match="not regenerable|rebuildable"):
        D.from_recipe(ds.recipe)


def test_npz_round_trip_with_and_without_test_set(tmp_path):
    rng = np.random.default_rng(0)
    X, y, Xt, yt = rng.standard_normal((20, 3)), rng.standard_normal(20), rng.standard_normal((5, 3)), rng.standard_normal(5)
    path = tmp_path / "set.npz"
    np.savez(path, X=X, y=y, X_test=Xt, y_test=yt)
    ds = D.load_npz(path)
    _same(ds, D.Dataset(X, y, Xt, yt))
    assert ds.name == "set" and ds.recipe["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    _same(D.from_recipe(json.loads(json.dumps(ds.recipe))), ds)
    only_train = D.load_npz(path, x_test_key=None)
    assert only_train.X_test is None
    other = tmp_path / "other.npz"
    np.savez(other, inputs=X, labels=y[:, None])
    split = D.load_npz(other, x_key="inputs", y_key="labels", n_test=6, seed=1)
    assert (split.n, split.n_test) == (14, 6)
    rows = np.vstack([split.X, split.X_test])
    order = np.lexsort(rows.T)
    np.testing.assert_array_equal(rows[order], X[np.lexsort(X.T)])
    _same(D.from_recipe(split.recipe), split)
    np.savez(other, inputs=X + 1, labels=y)
    with pytest.raises(FileFormatError, match="changed since"):
        D.from_recipe(split.recipe)


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((12, 4))
    path = tmp_path / "t.csv"
    np.savetxt(path, table, delimiter=",", fmt="%.17g", header="a,b,target,c", comments="")
    by_name = D.load_csv(path, target_column="target")
    np.testing.assert_array_equal(by_name.X, table[:, [0, 1, 3]])
    np.testing.assert_array_equal(by_name.y, table[:, 2])
    by_index = D.load_csv(path, target_column=2)
    _same(by_index, by_name)
    plain = tmp_path / "p.tsv"
    with open(plain, "w") as f:
        f.write("# a comment line\n\n")
        np.savetxt(f, table, delimiter="\t", fmt="%.17g")
    last = D.load_csv(plain, delimiter="\t", n_test=3, seed=2)
    assert (last.n, last.n_test) == (9, 3)
    full = D.load_csv(plain, delimiter="\t")
    np.testing.assert_array_equal(full.X, table[:, :3])
    np.testing.assert_array_equal(full.y, table[:, 3])
    _same(D.from_recipe(json.loads(json.dumps(last.recipe))), last)


def test_train_test_split_partitions_rows():
    X = np.arange(30.0).reshape(10, 3)
    ds = D.train_test_split(D.from_arrays(X, X[:, 0]), 4, seed=3)
    assert (ds.n, ds.n_test) == (6, 4)
    got = np.sort(np.concatenate([ds.X[:, 0], ds.X_test[:, 0]]))
    np.testing.assert_array_equal(got, X[:, 0])
    assert np.all(np.diff(ds.X[:, 0]) > 0) and np.all(np.diff(ds.X_test[:, 0]) > 0)  # file order kept
    np.testing.assert_array_equal(ds.y, ds.X[:, 0])
    assert ds.recipe["kind"] == "split" and ds.recipe["base"]["kind"] == "arrays"


# ---------------------------------------------------------------------------------------------------------
# shipped digits


def test_digits_file_checksum_and_contents():
    path = D._digits_path()
    with open(path, "rb") as f:
        blob = f.read()
    assert hashlib.sha256(blob).hexdigest() == D.DIGITS_SHA256
    assert len(blob) < 200_000
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["X", "y"]
        X, y = z["X"], z["y"]
    assert X.shape == (1797, 64) and X.dtype == np.uint8 and X.max() == 16 and X.min() == 0
    assert y.shape == (1797,)
    np.testing.assert_array_equal(np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_digits_file_equals_scikit_learn_copy():
    datasets = pytest.importorskip("sklearn.datasets")
    bunch = datasets.load_digits()
    raw = D.load_digits(target="digit", preprocessing="raw")
    np.testing.assert_array_equal(raw.X, bunch.data)
    np.testing.assert_array_equal(raw.y, bunch.target)


def test_digits_targets():
    raw = D.load_digits(target="digit", preprocessing="raw")
    par = D.load_digits(target="parity", preprocessing="raw")
    np.testing.assert_array_equal(par.y, np.where(raw.y % 2 == 0, 1.0, -1.0))
    b01 = D.load_digits(target="binary01", preprocessing="raw")
    keep = (raw.y == 0) | (raw.y == 1)
    assert b01.n == 360
    np.testing.assert_array_equal(b01.X, raw.X[keep])
    np.testing.assert_array_equal(b01.y, np.where(raw.y[keep] == 1, 1.0, -1.0))
    pair = D.load_digits(target=(3, 8), preprocessing="raw")
    keep = (raw.y == 3) | (raw.y == 8)
    np.testing.assert_array_equal(pair.y, np.where(raw.y[keep] == 8, 1.0, -1.0))
    assert pair.name == "digits-3v8"
    _same(D.from_recipe(json.loads(json.dumps(pair.recipe))), pair)


def test_digits_preprocessing_uses_training_statistics():
    raw = D.load_digits(target="parity", n_test=297, seed=4, preprocessing="raw")
    ds = D.load_digits(target="parity", n_test=297, seed=4)
    _same(D.from_recipe(json.loads(json.dumps(ds.recipe))), ds)
    mu, s = raw.X.mean(axis=0), raw.X.std(axis=0)
    live = s > 0
    np.testing.assert_allclose(ds.X.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(ds.X[:, live].std(axis=0), 1.0, rtol=1e-13)
    assert np.all(ds.X[:, ~live] == 0) and np.all(ds.X_test[:, ~live] == 0)
    np.testing.assert_allclose(np.mean(np.sum(ds.X**2, axis=1)), live.sum(), rtol=1e-13)
    np.testing.assert_allclose(ds.X_test[:, live], (raw.X_test[:, live] - mu[live]) / s[live], rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(ds.y_test, raw.y_test)
    sph = D.load_digits(target="parity", n_test=297, seed=4, preprocessing="sphere")
    for X in (sph.X, sph.X_test):
        np.testing.assert_allclose(np.sum(X**2, axis=1), 64.0, rtol=1e-13)
    unit = D.load_digits(preprocessing="unit", dtype="float32")
    assert unit.X.dtype == np.float32 and unit.X.min() == 0.0 and unit.X.max() == 1.0
    full = D.load_digits()
    assert np.sum(full.X.std(axis=0) > 0) == 61


def test_damaged_digits_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "digits.npz"
    bad.write_bytes(b"not the digits")
    monkeypatch.setattr(D, "_digits_path", lambda: str(bad))
    with pytest.raises(FileFormatError, match="sha256"):
        D.load_digits()
    monkeypatch.setattr(D, "_digits_path", lambda: str(tmp_path / "gone.npz"))
    with pytest.raises(FileFormatError, match="missing"):
        D.load_digits()


# ---------------------------------------------------------------------------------------------------------
# bad inputs: each raises the documented error with a one-line message naming the parameter


OK_X = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]
OK_y = [1.0, -1.0, 0.5]

BAD_CALLS = [
    (lambda: D.from_arrays([[0.0, np.nan], [1.0, 1.0]], [1.0, 2.0]), ConfigError, r"X = .*NaN at \[0, 1\].*finite"),
    (lambda: D.from_arrays(OK_X, [1.0, np.inf, 0.0]), ConfigError, r"y = .*inf at \[1\].*finite"),
    (lambda: D.from_arrays(OK_X, [1.0, 2.0]), ConfigError, r"y = an array of shape \(2,\).*shape \(3,\)"),
    (lambda: D.from_arrays([1.0, 2.0, 3.0], OK_y), ConfigError, r"X = an array of shape \(3,\).*2-D"),
    (lambda: D.from_arrays(np.zeros((0, 2)), []), ConfigError, r"X = .*n >= 1"),
    (lambda: D.from_arrays([["a", "b"]], [1.0]), ConfigError, r"X = .*real numeric"),
    (lambda: D.from_arrays(OK_X, OK_y, [[1.0, 2.0, 3.0]], [1.0]), ConfigError, r"X_test = .*\(n_test, 2\)"),
    (lambda: D.from_arrays(OK_X, OK_y, OK_X), ConfigError, r"y_test = None.*both X_test and y_test"),
    (lambda: D.from_arrays(OK_X, OK_y, OK_X, [1.0]), ConfigError, r"y_test = .*shape \(3,\)"),
    (lambda: D.from_arrays(OK_X, OK_y, dtype="int64"), ConfigError, r"dtype = .*float64 or float32"),
    (lambda: D.teacher_student(0, 10), ConfigError, r"d = 0 .*integer >= 1"),
    (lambda: D.teacher_student(3, 2.5), ConfigError, r"n_train = 2.5 .*integer >= 1"),
    (lambda: D.teacher_student(3, 10, -1), ConfigError, r"n_test = -1 .*integer >= 0"),
    (lambda: D.teacher_student(3, 10, k=0), ConfigError, r"k = 0 "),
    (lambda: D.teacher_student(3, 10, input="cube"), ConfigError, r"input = 'cube' .*'gaussian', 'sphere'"),
    (lambda: D.teacher_student(3, 10, noise=-0.1), ConfigError, r"noise = -0.1 .*>= 0"),
    (lambda: D.teacher_student(3, 10, noise=float("nan")), ConfigError, r"noise = nan .*finite"),
    (lambda: D.teacher_student(3, 10, seed=-2), ConfigError, r"seed = -2 "),
    (lambda: D.teacher_student(3, 10, activation="gelu"), ConfigError, r"activation = 'gelu' .*relu"),
    (lambda: D.teacher_student(3, 10, teacher=np.ones((2, 3))), ConfigError, r"teacher = .*\(k, 4\).*\(k, 5\)"),
    (lambda: D.teacher_student(3, 10, teacher=[[1.0, np.nan, 0.0, 0.0]]), ConfigError, r"teacher = .*NaN"),
    (lambda: D.teacher_student(3, 10, teacher=np.ones((2, 4)), k=3), ConfigError, r"k = 3 .*2 \(the number of rows"),
    (lambda: D.teacher_student(3, 10, teacher=np.ones((2, 4)), bias=True), ConfigError, r"bias = True .*inferred"),
    (lambda: D.teacher_outputs(np.ones((1, 3)), np.ones((4, 3))), ConfigError, r"teacher = "),
    (lambda: D.load_digits(target="odd"), ConfigError, r"target = 'odd' .*'parity'"),
    (lambda: D.load_digits(target=(3, 3)), ConfigError, r"target = \(3, 3\) .*distinct digits"),
    (lambda: D.load_digits(preprocessing="whiten"), ConfigError, r"preprocessing = 'whiten' .*'standardize'"),
    (lambda: D.load_digits(n_test=1797), ConfigError, r"n_test = 1797 .*0 to 1796"),
    (lambda: D.train_test_split(D.from_arrays(OK_X, OK_y), 0), ConfigError, r"n_test = 0 .*1 to 2"),
    (lambda: D.from_recipe({"kind": "magic"}), ConfigError, r"recipe.kind = 'magic'"),
    (lambda: D.teacher_student(3, 10, noise="0.1"), ConfigError, r"noise = '0.1' .*finite standard deviation"),
    (lambda: D.from_recipe({"kind": "teacher_student", "d": 2, "colour": 1}), ConfigError,
     r"recipe = .*as written in Dataset.recipe"),
    (lambda: D.from_recipe("{not json"), ConfigError, r"recipe = .*JSON"),
    (lambda: D.load_npz(123), ConfigError, r"path = 123 .*file path"),
]


@pytest.mark.parametrize("call, error, pattern", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_bad_input_raises_a_clear_one_line_error(call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_files_raise_file_format_error_naming_the_file(tmp_path):
    cases = []
    cases.append((lambda: D.load_npz(tmp_path / "absent.npz"), "absent.npz: no such file"))
    cases.append((lambda: D.load_npz(_write(tmp_path / "text.npz", "hello")), "is not a .npz archive"))
    np.save(tmp_path / "single.npy", np.ones((3, 2)))
    cases.append((lambda: D.load_npz(tmp_path / "single.npy"), "single array"))
    np.savez(tmp_path / "keys.npz", inputs=np.ones((3, 2)), y=np.ones(3))
    cases.append((lambda: D.load_npz(tmp_path / "keys.npz"), "has no array 'X' (arrays in the file: 'inputs', 'y')"))
    np.savez(tmp_path / "len.npz", X=np.ones((3, 2)), y=np.ones(4))
    cases.append((lambda: D.load_npz(tmp_path / "len.npz"), "array 'y' is an array of shape (4,); expected shape (3,)"))
    Xn = np.ones((3, 2))
    Xn[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, y=np.ones(3))
    cases.append((lambda: D.load_npz(tmp_path / "nan.npz"), "array 'X' is an array of shape (3, 2) with NaN at [2, 1]"))
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]], dtype=object), y=np.ones(1))
    cases.append((lambda: D.load_npz(tmp_path / "obj.npz"), "Python objects"))
    np.savez(tmp_path / "half.npz", X=np.ones((3, 2)), y=np.ones(3), Xt=np.ones((1, 2)))
    cases.append((lambda: D.load_npz(tmp_path / "half.npz", x_test_key="Xt", y_test_key="yt"), "has no array 'yt'"))
    cases.append((lambda: D.load_csv(tmp_path / "absent.csv"), "absent.csv: no such file"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "empty.csv", "\n# only a comment\n")), "holds no rows"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "head.csv", "a,b\n")), "header but no rows"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "rag.csv", "1,2,3\n4,5\n")), "line 2 has 2 cells; expected 3"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "word.csv", "1,2\n3,x\n")), "line 2, column 2 holds 'x'"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "hole.csv", "a,b\n1,\n")), "line 2, column 2 holds an empty cell"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "nan.csv", "1,2\n3,nan\n")), "line 2, column 2 holds 'nan'"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "one.csv", "1\n2\n")), "has 1 column; expected at least 2"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "named.csv", "a,b\n1,2\n"), target_column="y"),
                  "has no column 'y' (columns: 'a', 'b')"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "idx.csv", "1,2\n3,4\n"), target_column=5),
                  "target_column=5 does not exist; expected an index from -2 to 1"))
    cases.append((lambda: D.load_csv(_write(tmp_path / "nohead.csv", "1,2\n3,4\n"), target_column="b"), "has no header"))
    for call, message in cases:
        with pytest.raises(FileFormatError) as info:
            call()
        text = str(info.value)
        assert message in text and str(tmp_path) in text and "\n" not in text, text


def test_file_argument_errors_are_config_errors(tmp_path):
    path = _write(tmp_path / "ok.csv", "1,2\n3,4\n5,6\n")
    with pytest.raises(ConfigError, match=r"header = 'yes' .*'infer', True or False"):
        D.load_csv(path, header="yes")
    with pytest.raises(ConfigError, match="delimiter = "):
        D.load_csv(path, delimiter=";;")
    with pytest.raises(ConfigError, match=r"n_test = 3 .*0 to 2"):
        D.load_csv(path, n_test=3)
    np.savez(tmp_path / "both.npz", X=np.ones((3, 2)), y=np.ones(3), X_test=np.ones((1, 2)), y_test=np.ones(1))
    with pytest.raises(ConfigError, match="already holds a test set"):
        D.load_npz(tmp_path / "both.npz", n_test=1)


def test_recipes_are_json_serialisable(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.ones((3, 2)), y=np.ones(3))
    for ds in (D.from_arrays(OK_X, OK_y), D.teacher_student(2, 5, 2, teacher=[[1.0, 2.0, 3.0]]),
               D.load_digits(target=(1, 7), n_test=10), D.load_npz(tmp_path / "a.npz", n_test=1),
               D.train_test_split(D.from_arrays(OK_X, OK_y), 1)):
        assert json.loads(json.dumps(ds.recipe)) == ds.recipe
        assert isinstance(ds, tuple) and ds._fields == ("X", "y", "X_test", "y_test", "name", "recipe", "teacher")
    assert os.path.isabs(D.load_npz(tmp_path / "a.npz").recipe["path"])


@pytest.mark.parametrize("bias", [False, True])
def test_mean_field_student_on_the_scaled_teacher_reproduces_the_labels(bias):
    """The claim of the teacher_student docstring: particles (K a*_k, w*_k, b*_k) of a mean-field student
    with m = K give f = f* (checked against the compiled model outputs)."""
    from meanfield.model import Model, outputs

    k, d = 4, 6
    ds = D.teacher_student(d, 64, k=k, activation="tanh", bias=bias, seed=21)
    student = ds.teacher.copy()
    student[:, 0] *= k
    f = outputs(student, ds.X, Model(d=d, m=k, activation="tanh", scaling="mean_field", bias=bias))
    np.testing.assert_allclose(f, ds.y, rtol=1e-13, atol=1e-14)
