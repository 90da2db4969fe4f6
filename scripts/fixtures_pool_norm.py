"""PyTorch fixtures of the pooling and normalization ops (op set v2), for scripts/gen_fixtures.py.

OPS maps each op to a torch function taking the gradserve attrs as keyword arguments; cases(rnd) returns
(op, inputs, attrs) tuples (gen_fixtures runs them under their own random seed, so adding them leaves the other
fixtures as they are). Asymmetric pads, which torch's pooling functions do not take, are written as F.pad before an
unpadded pool (where that is the same computation); rms_norm, absent from torch 1.13, is its formula; batch_norm with
given statistics is its formula too (torch treats running statistics as non-differentiable), checked against
F.batch_norm's value.
"""
import torch
import torch.nn.functional as F

SEED = 20261127

MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _torch_pads(pads):
    """F.pad's flat list (last axis first) of [[before, after], ...] per spatial axis."""
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return flat


def max_pool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False):
    sp = len(kernel_shape)
    pads = pads or [[0, 0]] * sp
    stride = strides or kernel_shape
    dilation = dilations or [1] * sp
    if all(b == a for b, a in pads):
        return MAX_POOL[sp](x, kernel_shape, stride, [b for b, _ in pads], dilation, ceil_mode)
    assert not ceil_mode, 'asymmetric pads are written as F.pad, which changes what ceil_mode drops'
    return MAX_POOL[sp](F.pad(x, _torch_pads(pads), value=float('-inf')), kernel_shape, stride, 0, dilation)


def avg_pool(x, kernel_shape, strides=None, pads=None, ceil_mode=False, count_include_pad=False):
    sp = len(kernel_shape)
    pads = pads or [[0, 0]] * sp
    stride = strides or kernel_shape
    if all(b == a for b, a in pads):
        return AVG_POOL[sp](x, kernel_shape, stride, [b for b, _ in pads], ceil_mode, count_include_pad)
    assert count_include_pad and not ceil_mode, 'asymmetric pads as F.pad: zeros counted in every divisor'
    return AVG_POOL[sp](F.pad(x, _torch_pads(pads)), kernel_shape, stride, 0)


def layer_norm(x, scale=None, bias=None, axis=-1, epsilon=1e-5):
    return F.layer_norm(x, x.shape[axis % x.dim():], scale, bias, epsilon)


def rms_norm(x, scale=None, axis=-1, epsilon=1e-6):
    dims = list(range(axis % x.dim(), x.dim()))
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + epsilon)
    return y if scale is None else y * scale


def batch_norm(x, scale, bias, mean, var, epsilon=1e-5, training=False):
    if training:
        # the statistics are ignored (and torch would update them in place): they get no gradient
        return F.batch_norm(x, mean.detach().clone(), var.detach().clone(), scale, bias, True, 0.1, epsilon)
    per = [1, -1] + [1] * (x.dim() - 2)
    y = (x - mean.reshape(per)) / torch.sqrt(var.reshape(per) + epsilon) * scale.reshape(per) + bias.reshape(per)
    ref = F.batch_norm(x.detach(), mean.detach(), var.detach(), scale.detach(), bias.detach(), False, 0.1, epsilon)
    assert torch.allclose(y.detach(), ref, rtol=1e-5, atol=1e-6), 'batch_norm formula differs from F.batch_norm'
    return y


def group_norm(x, scale, bias, groups, epsilon=1e-5):
    return F.group_norm(x, groups, scale, bias, epsilon)


OPS = {
    'max_pool': max_pool, 'avg_pool': avg_pool,
    'layer_norm': layer_norm, 'rms_norm': rms_norm, 'batch_norm': batch_norm, 'group_norm': group_norm,
}


def cases(rnd):
    """(op, inputs, attrs) per case; FP64 unless a case says FP32 (compared to 1e-4)."""
    def C(op, inputs, **attrs):
        return (op, inputs, attrs)

    def mp(k, s=None, p=None, d=None, ceil=False):
        return dict(kernel_shape=k, strides=s, pads=p, dilations=d, ceil_mode=ceil)

    def ap(k, s=None, p=None, ceil=False, cip=False):
        return dict(kernel_shape=k, strides=s, pads=p, ceil_mode=ceil, count_include_pad=cip)

    pos = lambda shape, dtype='FP64': rnd(shape, 0.5, 1.5, dtype)
    bn = lambda c, dtype='FP64': [rnd([c], dtype=dtype), rnd([c], dtype=dtype), rnd([c], -0.5, 0.5, dtype), pos([c], dtype)]
    return [
        C('max_pool', [rnd([2, 3, 9])], **mp([3], [2], [[1, 1]])),
        C('max_pool', [rnd([2, 2, 7, 6])], **mp([3, 2], [2, 2], [[1, 1], [1, 1]], ceil=True)),
        C('max_pool', [rnd([1, 2, 8, 8])], **mp([3, 3], [1, 2], [[1, 1], [0, 0]], [2, 1])),
        C('max_pool', [rnd([1, 2, 5, 6, 6])], **mp([2, 3, 3], [2, 2, 2], [[0, 0], [1, 1], [1, 1]], ceil=True)),
        C('max_pool', [rnd([1, 1, 5, 5])], **mp([3, 3], [2, 2], [[1, 0], [0, 2]])),
        C('max_pool', [rnd([2, 3, 6, 6], dtype='FP32')], **mp([2, 2])),
        C('max_pool', [rnd([2, 2, 7, 5], dtype='FP32')], **mp([3, 3], [2, 1], [[1, 1], [1, 1]], [1, 2], ceil=True)),
        C('avg_pool', [rnd([2, 3, 8])], **ap([3], [2], [[1, 1]], cip=True)),
        C('avg_pool', [rnd([2, 2, 7, 6])], **ap([3, 3], [2, 2], [[1, 1], [1, 1]], ceil=True)),
        C('avg_pool', [rnd([2, 2, 7, 6])], **ap([3, 3], [2, 2], [[1, 1], [1, 1]], ceil=True, cip=True)),
        C('avg_pool', [rnd([1, 2, 5, 4, 6])], **ap([3, 2, 2], [2, 1, 2], [[1, 1], [0, 0], [1, 1]])),
        C('avg_pool', [rnd([1, 2, 5, 5])], **ap([3, 2], [2, 2], [[0, 1], [1, 0]], cip=True)),
        C('avg_pool', [rnd([2, 3, 6, 6], dtype='FP32')], **ap([2, 2])),
        C('avg_pool', [rnd([2, 2, 9], dtype='FP32')], **ap([4], [3], [[2, 2]], ceil=True, cip=True)),
        C('layer_norm', [rnd([3, 4, 5]), rnd([5]), rnd([5])], axis=-1, epsilon=1e-5),
        C('layer_norm', [rnd([2, 3, 4]), rnd([3, 4])], axis=1, epsilon=1e-5),
        C('layer_norm', [rnd([4, 6])], axis=-1, epsilon=1e-3),
        C('layer_norm', [rnd([3, 8], dtype='FP32'), rnd([8], dtype='FP32'), rnd([8], dtype='FP32')], axis=-1, epsilon=1e-5),
        C('rms_norm', [rnd([3, 6]), rnd([6])], axis=-1, epsilon=1e-6),
        C('rms_norm', [rnd([2, 3, 4])], axis=-2, epsilon=1e-6),
        C('rms_norm', [rnd([4, 5], dtype='FP32'), rnd([5], dtype='FP32')], axis=-1, epsilon=1e-6),
        C('batch_norm', [rnd([4, 3])] + bn(3), epsilon=1e-5, training=False),
        C('batch_norm', [rnd([3, 2, 5])] + bn(2), epsilon=1e-5, training=True),
        C('batch_norm', [rnd([2, 3, 4, 4])] + bn(3), epsilon=1e-3, training=False),
        C('batch_norm', [rnd([2, 2, 3, 3, 2])] + bn(2), epsilon=1e-5, training=True),
        C('batch_norm', [rnd([4, 3, 5, 5], dtype='FP32')] + bn(3, 'FP32'), epsilon=1e-5, training=True),
        C('group_norm', [rnd([2, 6, 5]), rnd([6]), rnd([6])], groups=3, epsilon=1e-5),
        C('group_norm', [rnd([2, 4, 3, 3]), rnd([4]), rnd([4])], groups=2, epsilon=1e-5),
        C('group_norm', [rnd([2, 3, 4, 4]), rnd([3]), rnd([3])], groups=3, epsilon=1e-5),
        C('group_norm', [rnd([3, 4]), rnd([4]), rnd([4])], groups=2, epsilon=1e-3),
        C('group_norm', [rnd([2, 6, 4, 4], dtype='FP32'), rnd([6], dtype='FP32'), rnd([6], dtype='FP32')], groups=2, epsilon=1e-5),
    ]
