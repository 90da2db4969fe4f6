"""PyTorch fixtures of the indexing, rearranging and sorting ops (op set v2), for scripts/gen_fixtures.py.

OPS maps each op to a torch function taking the gradserve attrs as keyword arguments; cases(rnd) returns
(op, inputs, attrs) tuples (gen_fixtures runs them under their own random seed, so adding them leaves the other
fixtures as they are). take_along_axis is torch.gather and scatter_add torch.scatter_add, with negative indices made
positive first (torch rejects them); sort and argsort are torch.sort(stable=True); top_k / top_k_indices are
torch.topk, whose order among equal values is not specified, so its cases have none (NaN cases hold one NaN).
Sorting cases with ties and NaNs pin the stable, NaN-largest order against torch's stable sort.
"""
import torch

SEED = 20261129


def _positive(indices, n):
    return torch.where(indices < 0, indices + n, indices).long()


def take_along_axis(x, indices, axis=0):
    return torch.gather(x, axis, _positive(indices, x.shape[axis]))


def scatter_add(x, indices, updates, axis=0):
    return x.scatter_add(axis, _positive(indices, x.shape[axis]), updates)


def flip(x, axes=None):
    if axes is None:
        axes = list(range(x.dim()))
    return torch.flip(x, [axes] if isinstance(axes, int) else axes)


def roll(x, shifts, axes=None):
    if axes is None:
        return torch.roll(x, shifts if isinstance(shifts, int) else shifts[0])
    return torch.roll(x, shifts, axes)


def sort(x, axis=-1, descending=False):
    return torch.sort(x, dim=axis, descending=descending, stable=True).values


def argsort(x, axis=-1, descending=False):
    return torch.sort(x, dim=axis, descending=descending, stable=True).indices


def top_k(x, k, axis=-1, largest=True):
    return torch.topk(x, k, dim=axis, largest=largest, sorted=True).values


def top_k_indices(x, k, axis=-1, largest=True):
    return torch.topk(x, k, dim=axis, largest=largest, sorted=True).indices


OPS = {
    'take_along_axis': take_along_axis, 'scatter_add': scatter_add,
    'tile': lambda x, repeats: torch.tile(x, repeats), 'flip': flip, 'roll': roll,
    'triu': lambda x, k=0: torch.triu(x, k), 'tril': lambda x, k=0: torch.tril(x, k),
    'sort': sort, 'argsort': argsort, 'top_k': top_k, 'top_k_indices': top_k_indices,
}


def t(values, dtype='FP64', shape=None):
    dt = {'FP64': torch.float64, 'FP32': torch.float32, 'INT32': torch.int32, 'INT64': torch.int64}[dtype]
    x = torch.tensor(values, dtype=dt)
    return x.reshape(shape) if shape is not None else x


def distinct(shape, dtype='FP64'):
    """Values at least 0.1 apart in a random order (no ties, so top_k's order is defined)."""
    n = 1
    for d in shape:
        n *= d
    v = (torch.randperm(n, dtype=torch.float64) - n / 2) * 0.1 + 0.01 * torch.rand(n, dtype=torch.float64)
    return v.reshape(shape).to({'FP64': torch.float64, 'FP32': torch.float32}[dtype])


def cases(rnd):
    """(op, inputs, attrs) per case; FP64 unless a case says FP32 (compared to 1e-4)."""
    def C(op, inputs, **attrs):
        return (op, inputs, attrs)

    nan = float('nan')
    out = []
    for dt in ('FP64', 'FP32'):
        out += [
            C('take_along_axis', [rnd([3, 4], dtype=dt), t([0, 3, -1, 1, 2, 2], 'INT64', [3, 2])], axis=1),
            C('take_along_axis', [rnd([3, 2, 2], dtype=dt), t([0, 1, 2, 0, -3, 2, 1, 1, 0, 0, 2, 1, 1, 2, 0, 2], 'INT32', [4, 2, 2])], axis=0),
            C('scatter_add', [rnd([3, 4], dtype=dt), t([0, 3, -1, 1, 2, 2], 'INT64', [3, 2]), rnd([3, 2], dtype=dt)], axis=1),
            C('scatter_add', [rnd([2, 3], dtype=dt), t([0, 1, 1, 1, -2, 0, 0, 0, 1, 1, 1, 0], 'INT32', [4, 3]), rnd([4, 3], dtype=dt)], axis=-2),
            C('tile', [rnd([2, 3], dtype=dt)], repeats=[2, 3]),
            C('tile', [rnd([3, 1, 2], dtype=dt)], repeats=[1, 4, 1]),
            C('flip', [rnd([3, 4], dtype=dt)], axes=None),
            C('flip', [rnd([2, 3, 2], dtype=dt)], axes=[-1, 0]),
            C('roll', [rnd([3, 4], dtype=dt)], shifts=[1, -5], axes=[0, 1]),
            C('roll', [rnd([2, 3], dtype=dt)], shifts=4, axes=None),
            C('triu', [rnd([3, 4], dtype=dt)], k=0), C('triu', [rnd([2, 4, 3], dtype=dt)], k=1),
            C('tril', [rnd([3, 4], dtype=dt)], k=0), C('tril', [rnd([2, 3, 4], dtype=dt)], k=-1),
            C('sort', [distinct([3, 5], dt)], axis=-1, descending=False),
            C('sort', [distinct([4, 2, 3], dt)], axis=0, descending=True),
            C('argsort', [distinct([3, 4], dt)], axis=1, descending=True),
            C('top_k', [distinct([3, 5], dt)], k=2, axis=-1, largest=True),
            C('top_k', [distinct([4, 3], dt)], k=3, axis=0, largest=False),
            C('top_k_indices', [distinct([3, 5], dt)], k=2, axis=-1, largest=False),
        ]
    out += [
        # integer data where the op takes it
        C('take_along_axis', [t([1, 2, 3, 4, 5, 6], 'INT32', [2, 3]), t([2, 0, -1, 1], 'INT64', [2, 2])], axis=1),
        C('scatter_add', [t([1, 2, 3, 4, 5, 6], 'INT64', [2, 3]), t([2, 2, 0, -1], 'INT64', [2, 2]), t([10, 20, 30, 40], 'INT64', [2, 2])], axis=1),
        C('tile', [t([1, 2, 3, 4], 'INT32', [2, 2])], repeats=[3, 1]),
        C('flip', [t([1, 2, 3, 4, 5, 6], 'INT64', [2, 3])], axes=1),
        C('roll', [t([1, 2, 3, 4, 5, 6], 'INT32', [2, 3])], shifts=[-1], axes=[1]),
        C('triu', [t(list(range(9)), 'INT64', [3, 3])], k=-1), C('tril', [t(list(range(9)), 'INT32', [3, 3])], k=1),
        C('sort', [t([3, -1, 3, 0, 7, -1], 'INT32')], axis=-1, descending=True),
        C('argsort', [t([2, 0, 2, -4, 0], 'INT64')], axis=0, descending=True),
        C('top_k', [t([4, 9, -2, 8, 0], 'INT32')], k=3),
        C('top_k_indices', [t([4, 9, -2, 8, 0], 'INT64')], k=2, largest=False),
        # NaN is the largest value, equal values keep their order in both directions (torch's stable sort)
        C('sort', [t([1, nan, 3, 1, nan, 3, 0])], axis=-1, descending=False),
        C('sort', [t([1, nan, 3, 1, nan, 3, 0], 'FP32')], axis=0, descending=True),
        C('argsort', [t([1, nan, 3, 1, nan, 3, 0, 1], shape=[2, 4])], axis=-1, descending=False),
        C('argsort', [t([1, nan, 3, 1, nan, 3, 0, 1], shape=[2, 4])], axis=-1, descending=True),
        C('top_k', [t([0.5, nan, 2.5, -1.0, 1.5])], k=2, largest=True),
        C('top_k_indices', [t([0.5, nan, 2.5, -1.0, 1.5])], k=4, largest=False),
    ]
    return out
