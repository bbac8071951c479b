r"""Generate tests/data/mpmath_refs.json: arbitrary-precision references for meanfield's Gaussian expectations.

Run from the repository root (takes about fifteen minutes on one core; results are cached case by case in
``tests/data/.mpmath_cache.json`` so an interrupted run resumes)::

    python tests/make_mpmath_refs.py

Nothing here imports meanfield. Every value is computed with mpmath (``mp.dps = 17`` for the nested
two-dimensional integrals, 30 for everything else) from the exact binary values of the float64 inputs:

* ``pairs``: :math:`K = E[\sigma(u)\sigma(v)]`, :math:`K_1 = E[\sigma''(u)\sigma(v)]`,
  :math:`K_2 = E[\sigma(u)\sigma''(v)]`, :math:`K_r = E[\sigma'(u)\sigma'(v)]`,
  :math:`K_{b1} = E[\sigma'(u)\sigma(v)]`, :math:`K_{b2} = E[\sigma(u)\sigma'(v)]` for
  :math:`u = b_1 + \sqrt{q_1}\xi_1`, :math:`v = b_2 + \sqrt{q_2}(\rho\xi_1 + \sqrt{1-\rho^2}\xi_2)`,
  :math:`\rho = r/\sqrt{q_1q_2}`. The expectation over :math:`\xi_2` given :math:`\xi_1` is in closed form
  for relu, erf, identity and quadratic (one-dimensional ``mp.quad``), and an inner ``mp.quad`` (tanh-sinh,
  split at the transition of :math:`\sigma`) for tanh, sigmoid and softplus. For relu,
  :math:`\sigma'' = \delta` gives :math:`K_1 = p_u(0) E[\mathrm{relu}(v) | u = 0]` exactly.
  Cases given by weight vectors (``w1``, ``w2``) take q1, q2, r and :math:`1 - \rho^2` from the vectors in
  exact arithmetic (the near-parallel and antiparallel cases).
* ``ntk``: the NNGP and NTK recursions of docs/conventions.md for small input sets with shared points,
  with the arc-cosine (relu) and arcsine (erf) kernels evaluated in mpmath, and a one-hidden-layer tanh
  kernel from the pair integrals.
* ``risk``: population risk and particle velocities of small student/teacher cases, assembled in mpmath
  from the pair expectations (formulas of docs/conventions.md, "Infinite data").
"""

from __future__ import annotations

import json
import os
import sys
import time
from fractions import Fraction

import mpmath as mp

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "mpmath_refs.json")
CACHE = os.path.join(HERE, "data", ".mpmath_cache.json")
L = 10  # truncation of the standard normal variables (phi(10) ~ 8e-23)


def sig(act, z, k):
    """k-th derivative (0, 1, 2) of the activation at z."""
    if act == "tanh":
        t = mp.tanh(z)
        return (t, 1 - t * t, -2 * t * (1 - t * t))[k]
    if act == "sigmoid":
        s = 1 / (1 + mp.exp(-z))
        return (s, s * (1 - s), s * (1 - s) * (1 - 2 * s))[k]
    if act == "softplus":
        s = 1 / (1 + mp.exp(-z))
        return (mp.log1p(mp.exp(z)) if z < 0 else z + mp.log1p(mp.exp(-z)), s, s * (1 - s))[k]
    if act == "erf":
        e = 2 / mp.sqrt(mp.pi) * mp.exp(-z * z)
        return (mp.erf(z), e, -2 * z * e)[k]
    raise ValueError(act)


def inner_closed(act, M, S):
    """(E sigma(M + S xi), E sigma'(M + S xi), E sigma''(M + S xi)) for xi ~ N(0, 1), in closed form."""
    if act == "erf":
        A = 1 + 2 * S * S
        e = 2 / mp.sqrt(mp.pi) / mp.sqrt(A) * mp.exp(-M * M / A)
        return mp.erf(M / mp.sqrt(A)), e, -2 * M / A * e
    if act == "relu":
        if S == 0:
            return (M if M > 0 else mp.mpf(0)), (mp.mpf(1) if M > 0 else mp.mpf(0)), None
        z = M / S
        return M * mp.ncdf(z) + S * mp.npdf(z), mp.ncdf(z), None
    if act == "identity":
        return M, mp.mpf(1), mp.mpf(0)
    if act == "quadratic":
        return M * M + S * S, 2 * M, mp.mpf(2)
    raise ValueError(act)


CLOSED_INNER = ("erf", "relu", "identity", "quadratic")


def pair(act, q1, q2, r, b1, b2, one_minus_rho2=None):
    """[K, K1, K2, Kr, Kb1, Kb2] for the pair (all inputs mpf)."""
    s1, s2 = mp.sqrt(q1), mp.sqrt(q2)
    if s1 == 0 or s2 == 0:
        rho, rp = mp.mpf(0), mp.mpf(1)
    else:
        rho = r / (s1 * s2)
        rp = mp.sqrt(one_minus_rho2 if one_minus_rho2 is not None else max(1 - rho * rho, 0))
    S = s2 * rp
    cache = {}

    def inner(x):
        if x not in cache:
            M = b2 + s2 * rho * x
            if act in CLOSED_INNER:
                cache[x] = inner_closed(act, M, S)
            elif S == 0:
                cache[x] = tuple(sig(act, M, k) for k in range(3))
            else:
                c = -M / S
                pts = sorted({-L, L, *[t for t in (c - 2 / S, c, c + 2 / S) if -L < t < L]})
                cache[x] = tuple(mp.quad(lambda t: sig(act, M + S * t, k) * mp.npdf(t), pts) for k in range(3))
        return cache[x]

    def outer(fu, ki):
        if s1 == 0:
            return fu(b1) * inner(mp.mpf(0))[ki]
        brk = {-L, L}
        for c, w in ((-b1 / s1, 1 / s1), ((-b2 / (s2 * rho)) if rho != 0 else None, 1 / (s2 * abs(rho) + 1e-30))):
            if c is not None:
                brk.update(t for t in (c - 2 * w, c, c + 2 * w) if -L < t < L)
        return mp.quad(lambda x: fu(b1 + s1 * x) * inner(x)[ki] * mp.npdf(x), sorted(brk))

    if act == "relu":
        f0 = lambda z: z if z > 0 else mp.mpf(0)  # noqa: E731
        f1 = lambda z: mp.mpf(1) if z > 0 else mp.mpf(0)  # noqa: E731
        K, Kr, Kb1, Kb2 = outer(f0, 0), outer(f1, 1), outer(f1, 0), outer(f0, 1)
        # sigma'' = delta: K1 = p_u(0) E[relu(v) | u = 0], K2 = p_v(0) E[relu(u) | v = 0]
        K1 = mp.npdf(-b1 / s1) / s1 * inner_closed("relu", b2 + s2 * rho * (-b1 / s1), S)[0] if s1 > 0 else mp.mpf(0)
        S1 = s1 * rp
        K2 = mp.npdf(-b2 / s2) / s2 * inner_closed("relu", b1 + s1 * rho * (-b2 / s2), S1)[0] if s2 > 0 else mp.mpf(0)
        return [K, K1, K2, Kr, Kb1, Kb2]
    f = [lambda z, k=k: sig(act, z, k) for k in range(3)] if act not in ("identity", "quadratic") else [
        (lambda z: z, lambda z: mp.mpf(1), lambda z: mp.mpf(0)), (lambda z: z * z, lambda z: 2 * z, lambda z: mp.mpf(2))
    ][act == "quadratic"]
    return [outer(f[0], 0), outer(f[2], 0), outer(f[0], 2), outer(f[1], 1), outer(f[1], 0), outer(f[0], 1)]


def mpf(x):
    return mp.mpf(Fraction(x)) if not isinstance(x, mp.mpf) else x


def from_vectors(w1, w2):
    """q1, q2, r and 1 - rho^2 of two weight vectors, exactly (d = len(w))."""
    d = len(w1)
    a = [Fraction(v) for v in w1]
    b = [Fraction(v) for v in w2]
    q1 = sum(x * x for x in a) / d
    q2 = sum(x * x for x in b) / d
    r = sum(x * y for x, y in zip(a, b)) / d
    det = q1 * q2 - r * r
    one_m = det / (q1 * q2) if q1 * q2 != 0 else Fraction(1)
    return mp.mpf(q1), mp.mpf(q2), mp.mpf(r), mp.mpf(one_m)


# --------------------------------------------------------------------------------------------------- cases

PAIR_CASES = [
    # (act, q1, q2, r, b1, b2): the regime |w|^2/d ~ 7.4 with a bias ~ 0.4, and beyond
    ("tanh", 7.4, 7.0, 2.0, 0.4, -0.3),
    ("tanh", 10.0, 10.0, 9.999, 0.4, 0.4),
    ("tanh", 10.0, 9.0, -9.48, -0.5, 0.2),
    ("tanh", 2.5, 2.5, 0.5, 0.0, 0.0),
    ("sigmoid", 7.4, 7.0, 2.0, 0.4, -0.3),
    ("softplus", 7.4, 7.0, -2.0, 0.4, -0.3),
    ("erf", 7.4, 7.0, 2.0, 0.4, -0.3),
    ("erf", 25.0, 25.0, 24.99, 1.0, -1.0),
    ("erf", 10.0, 10.0, 3.0, 0.0, 0.0),
    ("erf", 1e-8, 4.0, 1e-5, 0.3, 0.0),
    ("erf", 1e-6, 3.0, 1e-4, 0.2, 0.1),
    ("erf", 1e4, 2.0, 100.0, 0.5, -0.3),
    ("erf", 0.0, 2.0, 0.0, 0.7, -0.2),
    ("relu", 7.4, 7.0, 2.0, 0.4, -0.3),
    ("relu", 4.0, 4.0, 3.9999999, 0.3, 0.3),
    ("relu", 9.0, 1.0, -2.9, 0.0, 0.0),
    ("relu", 2.0, 3.0, 0.4, 0.0, 0.0),
    ("identity", 2.0, 3.0, 0.4, 0.5, -1.5),
    ("quadratic", 2.0, 3.0, 0.4, 0.5, -1.5),
]

# (act, w1, w2, b1, b2): pairs given by weight vectors (d = 3), near-parallel and antiparallel
_W = [1.3, -0.7, 2.1]
VECTOR_CASES = [
    ("relu", _W, [1.3, -0.7, 2.1 + 2.0**-30], 0.0, 0.0),
    ("relu", _W, [-1.3, 0.7, -2.1 + 2.0**-30], 0.0, 0.0),
    ("relu", _W, [1.3 * 2, -0.7 * 2, 2.1 * 2 + 2.0**-28], 0.25, -0.5),
    ("erf", _W, [1.3, -0.7, 2.1 + 2.0**-30], 0.25, -0.5),
]

# NTK/NNGP: X (n, d) rows; the second set shares rows 0 and 2 with the first
NTK_X1 = [[1.0, -0.5, 2.0], [0.3, 1.1, -0.7], [-1.2, 0.4, 0.9]]
NTK_X2 = [[1.0, -0.5, 2.0], [0.5, 0.5, 0.5], [-1.2, 0.4, 0.9], [1.0, -0.5, 2.0 + 2.0**-40]]
NTK_CASES = [
    # (act, depth, bias, sigma_w, sigma_a, sigma_b, layer_lr)
    ("relu", 1, False, 1.0, 1.0, 0.0, (1.0, 1.0, 1.0)),
    ("relu", 1, True, 1.3, 0.8, 0.6, (1.0, 0.5, 2.0)),
    ("relu", 3, True, 1.3, 0.8, 0.6, (1.0, 0.5, 2.0)),
    ("relu", 3, False, 1.0, 1.0, 0.0, (1.0, 1.0, 1.0)),
    ("erf", 2, True, 1.5, 1.0, 0.5, (1.0, 1.0, 1.0)),
]

RISK_CASES = [
    # (act, bias, theta (m, d + 1 [+ 1]), teacher (k, d + 2), (alpha, beta, c), lr, layer_lr, weight_decay)
    ("erf", True, [[0.7, 1.9, -2.2, 0.4], [-1.1, -0.3, 2.6, -0.2]], [[1.0, 2.4, 1.7, 0.3]],
     (1.0, 1.0, 1.0), 0.7, (1.3, 0.8, 1.1), 0.05),
    ("relu", True, [[0.7, 1.9, -2.2, 0.4], [-1.1, -0.3, 2.6, -0.2]], [[1.0, 2.4, 1.7, 0.3]],
     (0.5, 0.0, 1.0), 1.0, (1.0, 1.0, 1.0), 0.0),
]


# --------------------------------------------------------------------------------------------------- ntk


def _kernels_closed(act, q1, q2, c):
    """(E s(u)s(v), E s'(u)s'(v)) for centred (u, v), closed forms in mpmath."""
    if act == "relu":
        s = mp.sqrt(q1 * q2)
        if s == 0:
            return mp.mpf(0), mp.mpf(0)
        rho = max(min(c / s, 1), -1)
        th = mp.acos(rho)
        return s * (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / (2 * mp.pi), (mp.pi - th) / (2 * mp.pi)
    if act == "erf":
        den = (1 + 2 * q1) * (1 + 2 * q2)
        return 2 / mp.pi * mp.asin(2 * c / mp.sqrt(den)), 4 / mp.pi / mp.sqrt(den - 4 * c * c)
    raise ValueError(act)


def ntk_case(act, depth, bias, sw, sa, sb, lr3):
    sw2, sa2 = mpf(sw) ** 2, mpf(sa) ** 2
    sb2 = mpf(sb) ** 2 if bias else mp.mpf(0)
    ea, ew, eb = (mpf(v) for v in lr3)
    if not bias:
        eb = mp.mpf(0)
    X1 = [[mpf(v) for v in row] for row in NTK_X1]
    X2 = [[mpf(v) for v in row] for row in NTK_X2]
    d = len(X1[0])
    dot = lambda x, y: sum(a * b for a, b in zip(x, y)) / d  # noqa: E731
    nngp, ntk = [], []
    for x in X1:
        rn, rk = [], []
        for y in X2:
            q1, q2, c = sw2 * dot(x, x) + sb2, sw2 * dot(y, y) + sb2, sw2 * dot(x, y) + sb2
            tan = ew * dot(x, y) + eb
            for _ in range(depth - 1):
                ess, edd = _kernels_closed(act, q1, q2, c)
                tan = tan * sw2 * edd + ew * ess + eb
                c = sw2 * ess + sb2
                q1 = sw2 * _kernels_closed(act, q1, q1, q1)[0] + sb2
                q2 = sw2 * _kernels_closed(act, q2, q2, q2)[0] + sb2
            ess, edd = _kernels_closed(act, q1, q2, c)
            rn.append(sa2 * ess)
            rk.append(tan * sa2 * edd + ea * ess)
        nngp.append(rn)
        ntk.append(rk)
    return nngp, ntk


# --------------------------------------------------------------------------------------------------- risk


def risk_case(act, bias, theta, teacher, abc, lr, lr3, lam):
    alpha, beta, c = (mpf(v) for v in abc)
    th = [[mpf(v) for v in row] for row in theta]
    T = [[mpf(v) for v in row] for row in teacher]
    m, k = len(th), len(T)
    d = len(T[0]) - 2
    split = lambda row, has_b: (row[0], row[1 : 1 + d], row[1 + d] if has_b else mp.mpf(0))  # noqa: E731
    S = [split(row, bias) for row in th]
    Tt = [split(row, True) for row in T]
    dot = lambda x, y: sum(a * b for a, b in zip(x, y)) / d  # noqa: E731

    def P(p1, p2):
        _, w1, b1 = p1
        _, w2, b2 = p2
        q1, q2, r = dot(w1, w1), dot(w2, w2), dot(w1, w2)
        # exact 1 - rho^2 from the vectors (0 for a particle with itself)
        one_m = (q1 * q2 - r * r) / (q1 * q2) if q1 * q2 != 0 else mp.mpf(1)
        return pair(act, q1, q2, r, b1, b2, max(one_m, 0))

    s = c * mpf(m) ** (-alpha)
    KS = [[P(S[j], S[l]) for l in range(m)] for j in range(m)]
    KT = [[P(S[j], Tt[l]) for l in range(k)] for j in range(m)]
    KTT = [[P(Tt[j], Tt[l])[0] for l in range(k)] for j in range(k)]
    energy = sum(T[i][0] * T[j][0] * KTT[i][j] for i in range(k) for j in range(k))
    cross = sum(S[j][0] * T[l][0] * KT[j][l][0] for j in range(m) for l in range(k))
    self_ = sum(S[j][0] * S[l][0] * KS[j][l][0] for j in range(m) for l in range(m))
    R = energy / 2 - s * cross + s * s * self_ / 2
    D = [mpf(lr3[0])] + [mpf(lr3[1])] * d + ([mpf(lr3[2])] if bias else [])
    vel = []
    for j in range(m):
        aj, wj, bj = S[j]
        # E[(f - f*) grad_theta phi(theta_j)] with grad_theta[a K] = (K, a (K1 w + Kr w') / d, a Kb1)
        g = [mp.mpf(0)] * (1 + d + int(bias))
        terms = [(s * S[l][0], KS[j][l], S[l][1]) for l in range(m)] + [(-T[l][0], KT[j][l], Tt[l][1]) for l in range(k)]
        for coef, Kv, wl in terms:
            K, K1, K2, Kr, Kb1, Kb2 = Kv
            g[0] += coef * K
            for q in range(d):
                g[1 + q] += coef * aj * (K1 * wj[q] + Kr * wl[q]) / d
            if bias:
                g[1 + d] += coef * aj * Kb1
        pref = mpf(lr) * mpf(m) ** (beta - alpha) / c
        vel.append([-pref * D[q] * g[q] - mpf(lam) * th[j][q] for q in range(len(g))])
    return R, vel


# --------------------------------------------------------------------------------------------------- driver


def _s(x):
    return mp.nstr(x, 25, min_fixed=-1, max_fixed=-1) if isinstance(x, mp.mpf) else x


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    cache = json.load(open(CACHE)) if os.path.exists(CACHE) else {}

    def cached(key, fn):
        if key not in cache:
            t0 = time.time()
            cache[key] = fn()
            print(f"{time.time() - t0:7.1f} s  {key}", flush=True)
            with open(CACHE + ".tmp", "w") as f:
                json.dump(cache, f)
            os.replace(CACHE + ".tmp", CACHE)
        return cache[key]

    out = {"pairs": [], "vectors": [], "ntk": [], "risk": [],
           "fields": ["K", "K1", "K2", "Kr", "Kb1", "Kb2"], "ntk_X1": NTK_X1, "ntk_X2": NTK_X2}
    two_d = ("tanh", "sigmoid", "softplus")
    for case in sorted(PAIR_CASES, key=lambda c: c[0] in two_d):  # the fast one-dimensional cases first
        act, q1, q2, r, b1, b2 = case
        dps = 17 if act in ("tanh", "sigmoid", "softplus") else 30
        mp.mp.dps = dps

        def run(case=case):
            act, q1, q2, r, b1, b2 = case
            return [_s(v) for v in pair(act, mpf(q1), mpf(q2), mpf(r), mpf(b1), mpf(b2))]

        out["pairs"].append({"act": act, "q1": q1, "q2": q2, "r": r, "b1": b1, "b2": b2,
                             "values": cached(repr(case), run)})
    for case in VECTOR_CASES:
        act, w1, w2, b1, b2 = case
        mp.mp.dps = 17 if act == "tanh" else 30

        def run(case=case):
            act, w1, w2, b1, b2 = case
            q1, q2, r, om = from_vectors(w1, w2)
            return [_s(v) for v in pair(act, q1, q2, r, mpf(b1), mpf(b2), om)]

        out["vectors"].append({"act": act, "w1": w1, "w2": w2, "b1": b1, "b2": b2, "values": cached(repr(case), run)})
    mp.mp.dps = 30
    for case in NTK_CASES:
        def run(case=case):
            nn, nt = ntk_case(*case)
            return {"nngp": [[_s(v) for v in row] for row in nn], "ntk": [[_s(v) for v in row] for row in nt]}

        act, depth, bias, sw, sa, sb, lr3 = case
        out["ntk"].append({"act": act, "depth": depth, "bias": bias, "sigma_w": sw, "sigma_a": sa, "sigma_b": sb,
                           "layer_lr": list(lr3), **cached(repr(case), run)})
    for case in RISK_CASES:
        act = case[0]
        mp.mp.dps = 17 if act == "tanh" else 30

        def run(case=case):
            R, vel = risk_case(*case)
            return {"risk": _s(R), "velocities": [[_s(v) for v in row] for row in vel]}

        act, bias, theta, teacher, abc, lr, lr3, lam = case
        out["risk"].append({"act": act, "bias": bias, "theta": theta, "teacher": teacher, "alpha": abc[0],
                            "beta": abc[1], "c": abc[2], "lr": lr, "layer_lr": list(lr3), "weight_decay": lam,
                            **cached(repr(case), run)})
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    sys.exit(main())
