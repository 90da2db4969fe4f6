"""PyTorch fixtures of the linear-algebra solve family (op set v3), for scripts/gen_fixtures.py.

Matrices are well conditioned (a random part plus a multiple of the identity; SPD ones for cholesky), so FP32 and FP64
references compare tightly. gradserve's cholesky factors (a + a^T) / 2 (the lower-triangle reading of LAPACK for a
symmetric a, with a symmetric gradient), so the reference is torch.linalg.cholesky of that: the same value for the
symmetric inputs here, and derivatives of the same function. lstsq's reference is pinv(a) @ b (the minimum-norm
solution, differentiable in torch); logabsdet is torch.linalg.slogdet's second output. Every op also gets a JVP
reference.
"""
import torch

SEED = 20261207


def _vector_rhs(a, b):
    return b.dim() == 1 or (b.dim() == a.dim() - 1 and list(b.shape) == list(a.shape[:-1]))


def triangular_solve(a, b, lower=True, unit_diagonal=False, left=True):
    return torch.linalg.solve_triangular(a, b, upper=not lower, left=left, unitriangular=unit_diagonal)


def lstsq(a, b):
    if _vector_rhs(a, b):
        return (torch.linalg.pinv(a) @ b.unsqueeze(-1)).squeeze(-1)
    return torch.linalg.pinv(a) @ b


OPS = {
    'triangular_solve': triangular_solve,
    'solve': lambda a, b: torch.linalg.solve(a, b),
    'inv': lambda a: torch.linalg.inv(a),
    'cholesky': lambda a: torch.linalg.cholesky(0.5 * (a + a.mT)),
    'det': lambda a: torch.linalg.det(a),
    'logabsdet': lambda a: torch.linalg.slogdet(a)[1],
    'lstsq': lstsq,
}
JVP_OPS = set(OPS)


def cases(rnd):
    def C(op, inputs, **attrs):
        return (op, inputs, attrs)

    DT = {'FP64': torch.float64, 'FP32': torch.float32}

    def wellcond(shape, dt):
        n = shape[-1]
        return (rnd(shape, -1, 1) + 2.5 * torch.eye(n, dtype=torch.float64)).to(DT[dt])

    def spd(shape, dt):
        m = rnd(shape, -1, 1)
        return (m @ m.mT + shape[-1] * torch.eye(shape[-1], dtype=torch.float64)).to(DT[dt])

    def tall(shape, dt):
        a = rnd(shape, -1, 1)
        a[..., :shape[-1], :] += 2 * torch.eye(shape[-1], dtype=torch.float64)
        return a.to(DT[dt])

    out = []
    for dt in ('FP64', 'FP32'):
        out += [
            C('triangular_solve', [wellcond([3, 3], dt), rnd([3, 2], dtype=dt)]),
            C('triangular_solve', [wellcond([2, 4, 4], dt), rnd([4, 3], dtype=dt)], lower=False, unit_diagonal=False, left=True),
            C('triangular_solve', [wellcond([3, 3], dt), rnd([2, 2, 3], dtype=dt)], lower=True, unit_diagonal=True, left=False),
            C('triangular_solve', [wellcond([2, 3, 3], dt), rnd([2, 3, 3], dtype=dt)], lower=False, unit_diagonal=True, left=False),
            C('solve', [wellcond([3, 3], dt), rnd([3, 2], dtype=dt)]),
            C('solve', [wellcond([4, 4], dt), rnd([4], dtype=dt)]),
            C('solve', [wellcond([2, 3, 3], dt), rnd([2, 3], dtype=dt)]),
            C('solve', [wellcond([2, 1, 3, 3], dt), rnd([3, 3, 2], dtype=dt)]),
            C('inv', [wellcond([3, 3], dt)]),
            C('inv', [wellcond([2, 4, 4], dt)]),
            C('cholesky', [spd([3, 3], dt)]),
            C('cholesky', [spd([2, 4, 4], dt)]),
            C('det', [wellcond([3, 3], dt)]),
            C('det', [wellcond([2, 4, 4], dt)]),
            C('logabsdet', [wellcond([3, 3], dt)]),
            C('logabsdet', [wellcond([2, 4, 4], dt) - 5 * torch.eye(4, dtype=DT[dt])]),
            C('lstsq', [tall([5, 3], dt), rnd([5, 2], dtype=dt)]),
            C('lstsq', [tall([2, 4, 2], dt), rnd([2, 4], dtype=dt)]),
            C('lstsq', [tall([3, 3], dt), rnd([3], dtype=dt)]),
        ]
    return out
