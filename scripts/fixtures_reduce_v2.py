"""PyTorch fixtures of the op set v2 reductions, scans and contractions: var, std, norm, cumsum, cumprod, einsum.

OPS maps each op to a torch function taking the gradserve attrs as keyword arguments; cases(rnd) returns
(op, inputs, attrs) tuples, run by scripts/gen_fixtures.py under SEED (listed in its FAMILIES). Rewrite only these
ops' files with
    /usr/bin/python3 scripts/gen_fixtures.py var,std,norm,cumsum,cumprod,einsum
Random inputs stay away from ties and zeros except in the cases that pin them. var/std with a fractional correction,
which torch 1.13 does not take, are the NumPy formula; reverse and exclusive scans are torch.flip and a shifted cat.
"""
import torch

SEED = 20261213


def _dims(x, axes):
    if axes is None:
        return list(range(x.dim()))
    if isinstance(axes, int):
        axes = [axes]
    return sorted(a % x.dim() for a in axes)


def _moments(fn):
    """torch.var / torch.std with an integer correction; the NumPy formula (max(N - c, 0) divisor) otherwise."""
    def run(x, axes=None, keepdims=False, correction=0):
        dims = _dims(x, axes)
        if float(correction).is_integer():
            return fn(x, dim=dims, correction=int(correction), keepdim=keepdims)
        n = 1
        for d in dims:
            n *= x.shape[d]
        v = ((x - x.mean(dim=dims, keepdim=True)) ** 2).sum(dim=dims, keepdim=keepdims) / max(n - correction, 0)
        return v if fn is torch.var else torch.sqrt(v)
    return run


def norm(x, ord=2, axes=None, keepdims=False):
    p = float('inf') if ord == 'inf' else ord
    return torch.linalg.vector_norm(x, ord=p, dim=None if axes is None else _dims(x, axes), keepdim=keepdims)


def _scan(fn, identity):
    """torch.cumsum / torch.cumprod; reverse by flipping, exclusive by shifting in the identity."""
    def run(x, axis, exclusive=False, reverse=False):
        d = axis % x.dim()
        y = torch.flip(x, [d]) if reverse else x
        y = fn(y, dim=d)
        if exclusive:
            first = torch.full_like(y.narrow(d, 0, 1), identity)
            y = torch.cat([first, y.narrow(d, 0, y.shape[d] - 1)], dim=d)
        return torch.flip(y, [d]) if reverse else y
    return run


OPS = {
    'var': _moments(torch.var),
    'std': _moments(torch.std),
    'norm': norm,
    'cumsum': _scan(torch.cumsum, 0),
    'cumprod': _scan(torch.cumprod, 1),
    'einsum': lambda *xs, equation: torch.einsum(equation, *xs),
}


def C(op, inputs, **attrs):
    return (op, inputs, attrs)


def cases(rnd):
    ints = lambda v, shape: torch.tensor(v, dtype=torch.int64).reshape(shape)
    f32 = lambda s, lo=-2.0, hi=2.0: rnd(s, lo, hi, 'FP32')
    t = lambda v, dtype=torch.float64: torch.tensor(v, dtype=dtype)
    zeros = t([[0.5, 0.0, 1.2, -0.7, 0.0], [0.9, 0.0, 1.3, -1.1, 0.6], [0.8, 1.4, -0.6, 1.1, 0.7]])
    return [
        C('var', [rnd([3, 4])], axes=1, keepdims=False, correction=1),
        C('var', [rnd([2, 3, 4])], axes=[0, -1], keepdims=True, correction=0),
        C('var', [rnd([2, 5])], axes=None, keepdims=False, correction=0),
        C('var', [rnd([4, 3])], axes=0, keepdims=False, correction=1.5),
        C('var', [f32([4, 5])], axes=-1, keepdims=False, correction=1),
        C('std', [rnd([3, 4])], axes=-1, keepdims=True, correction=1),
        C('std', [rnd([2, 3, 2])], axes=[0, 2], keepdims=False, correction=0),
        C('std', [t([[0.5, 0.5, 0.5], [-1.0, 2.0, 0.25]])], axes=1, keepdims=False, correction=1),  # a constant row: zero gradient
        C('std', [f32([3, 6])], axes=None, keepdims=False, correction=0),
        C('norm', [rnd([2, 3])], ord=2, axes=None, keepdims=False),
        C('norm', [rnd([3, 4])], ord=1, axes=-1, keepdims=True),
        C('norm', [rnd([2, 3, 4])], ord='inf', axes=[0, 2], keepdims=False),
        C('norm', [t([[0.0, 0.0, 0.0], [0.6, -0.8, 1.1]])], ord=2, axes=1, keepdims=False),  # a zero row: zero gradient
        C('norm', [t([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])], ord='inf', axes=-1, keepdims=False),  # zeros, and a tie split
        C('norm', [t([[0.0, -1.5, 0.5], [0.7, 0.0, -0.2]])], ord=1, axes=None, keepdims=False),  # sign(0) = 0
        C('norm', [f32([4, 3])], ord=2, axes=0, keepdims=False),
        C('norm', [f32([4, 3])], ord='inf', axes=1, keepdims=True),
        C('cumsum', [rnd([3, 4])], axis=1),
        C('cumsum', [rnd([2, 3, 4])], axis=-1, reverse=True),
        C('cumsum', [rnd([4, 3])], axis=0, exclusive=True),
        C('cumsum', [rnd([2, 5])], axis=-1, exclusive=True, reverse=True),
        C('cumsum', [ints([3, -1, 4, 1, -5, 9], [2, 3])], axis=0),
        C('cumsum', [f32([3, 5])], axis=1, reverse=True),
        C('cumprod', [rnd([3, 4], 0.5, 1.5)], axis=1),
        C('cumprod', [rnd([2, 3, 4], -1.5, 1.5)], axis=-2, reverse=True),
        C('cumprod', [rnd([4, 3], 0.5, 1.5)], axis=0, exclusive=True),
        C('cumprod', [rnd([2, 5], 0.5, 1.5)], axis=1, exclusive=True, reverse=True),
        C('cumprod', [zeros], axis=1),  # zeros: exact gradient
        C('cumprod', [zeros], axis=-1, reverse=True),
        C('cumprod', [zeros.t().contiguous()], axis=0, exclusive=True),
        C('cumprod', [f32([3, 4], 0.5, 1.5)], axis=1),
        C('einsum', [rnd([2, 3]), rnd([3, 4])], equation='ij,jk->ik'),
        C('einsum', [rnd([2, 2, 3]), rnd([2, 3, 2])], equation='bij,bjk->bik'),
        C('einsum', [rnd([3]), rnd([4])], equation='i,j->ij'),
        C('einsum', [rnd([3, 3])], equation='ii->'),
        C('einsum', [rnd([3, 3])], equation='ii->i'),
        C('einsum', [rnd([2, 3, 2])], equation='iji->ji'),
        C('einsum', [rnd([2, 1, 2, 3]), rnd([3, 3, 2])], equation='...ij,...jk->...ik'),
        C('einsum', [rnd([2, 3, 4])], equation='...i->i'),
        C('einsum', [rnd([1, 3]), rnd([2, 3])], equation='ij,ij->ij'),
        C('einsum', [rnd([2, 3]), rnd([3, 2]), rnd([2, 4])], equation='ij,jk,kl->il'),
        C('einsum', [rnd([2, 3]), rnd([4, 3, 2]), rnd([2, 2])], equation='bn,anm,bm->ba'),
        C('einsum', [rnd([4, 3]), rnd([4, 3])], equation='bi,bi->b'),
        C('einsum', [rnd([3, 2]), rnd([3])], equation='iA,i->A'),
        C('einsum', [rnd([]), rnd([3])], equation=',i->i'),
        C('einsum', [f32([2, 3, 4]), f32([2, 4, 5])], equation='bij,bjk->bki'),
        C('einsum', [f32([4, 4])], equation='ii->'),
    ]
