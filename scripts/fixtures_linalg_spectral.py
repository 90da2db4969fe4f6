"""PyTorch fixtures of the v3 spectral linear algebra: eigh_values, svd_values, qr_q, qr_r (value, VJP and JVP).

OPS maps each op to a torch.linalg function; cases(rnd) returns (op, inputs, attrs) tuples, run by
scripts/gen_fixtures.py under SEED (listed in its FAMILIES). Rewrite only these ops' files with
    /usr/bin/python3 scripts/gen_fixtures.py eigh_values,svd_values,qr_q,qr_r
Inputs are well conditioned: symmetric matrices with eigenvalues at least 0.5 apart, matrices built from chosen
singular values (distinct, away from zero), and QR inputs of full column rank. Eigen- and singular vectors are never
compared (their signs are a convention); QR's signs are LAPACK's Householder ones, which torch.linalg.qr shares.
"""
import torch

SEED = 20261207


def _qr_q(a):
    return torch.linalg.qr(a, mode='reduced').Q


def _qr_r(a):
    return torch.linalg.qr(a, mode='reduced').R


OPS = {
    'eigh_values': torch.linalg.eigvalsh,
    'svd_values': torch.linalg.svdvals,
    'qr_q': _qr_q,
    'qr_r': _qr_r,
}

JVP_OPS = set(OPS)


def C(op, inputs, **attrs):
    return (op, inputs, attrs)


def _orthonormal(rnd, batch, n, k):
    """n x k with orthonormal columns (the Q of a random matrix)."""
    return torch.linalg.qr(rnd(batch + [n, k]), mode='reduced').Q


def symmetric(rnd, batch, n, dtype='FP64'):
    """A symmetric matrix whose eigenvalues are spread evenly over [-2, 2] (gaps 4 / (n - 1)), in a random basis."""
    q = _orthonormal(rnd, batch, n, n)
    lam = torch.linspace(-2.0, 2.0, n, dtype=torch.float64) + 0.1 * rnd(batch + [n], -1, 1)
    a = (q * lam.unsqueeze(-2)) @ q.transpose(-1, -2)
    a = (a + a.transpose(-1, -2)) / 2
    return a.to(torch.float32) if dtype == 'FP32' else a


def with_singular_values(rnd, batch, m, n, dtype='FP64'):
    """An m x n matrix whose singular values are spread over [0.5, 3] (distinct, away from zero)."""
    k = min(m, n)
    u = _orthonormal(rnd, batch, m, k)
    v = _orthonormal(rnd, batch, n, k)
    s = torch.linspace(3.0, 0.5, k, dtype=torch.float64) + 0.05 * rnd(batch + [k], -1, 1)
    a = (u * s.unsqueeze(-2)) @ v.transpose(-1, -2)
    return a.to(torch.float32) if dtype == 'FP32' else a


def cases(rnd):
    f32 = lambda s: rnd(s, -2.0, 2.0, 'FP32')
    return [
        C('eigh_values', [symmetric(rnd, [], 3)]),
        C('eigh_values', [symmetric(rnd, [], 5)]),
        C('eigh_values', [symmetric(rnd, [2], 4)]),
        C('eigh_values', [symmetric(rnd, [], 4, 'FP32')]),
        C('eigh_values', [symmetric(rnd, [2, 2], 3, 'FP32')]),
        C('svd_values', [with_singular_values(rnd, [], 4, 3)]),
        C('svd_values', [with_singular_values(rnd, [], 2, 5)]),
        C('svd_values', [with_singular_values(rnd, [], 3, 3)]),
        C('svd_values', [with_singular_values(rnd, [2], 3, 2)]),
        C('svd_values', [with_singular_values(rnd, [], 4, 3, 'FP32')]),
        C('svd_values', [with_singular_values(rnd, [3], 2, 3, 'FP32')]),
        C('qr_q', [rnd([4, 3])]),
        C('qr_q', [rnd([3, 3])]),
        C('qr_q', [rnd([2, 5, 2])]),
        C('qr_q', [f32([4, 3])]),
        C('qr_r', [rnd([4, 3])]),
        C('qr_r', [rnd([3, 3])]),
        C('qr_r', [rnd([2, 5, 2])]),
        C('qr_r', [f32([2, 3, 3])]),
    ]
