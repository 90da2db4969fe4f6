"""PyTorch fixtures of conv and conv_transpose (op set v2), for scripts/gen_fixtures.py.

OPS maps each op to a torch function taking the gradserve attrs as keyword arguments; cases(rnd) returns
(op, inputs, attrs) tuples, run by scripts/gen_fixtures.py under SEED (listed in its FAMILIES). Both ops are in
JVP_OPS: their cases also carry a forward-mode reference. Rewrite only these ops' files with
    /usr/bin/python3 scripts/gen_fixtures.py conv,conv_transpose
Asymmetric pads, which torch's convolutions do not take, are F.pad before an unpadded conv, and a crop of the
unpadded result of a transposed conv.
"""
import torch
import torch.nn.functional as F

SEED = 20261207
JVP_OPS = {'conv', 'conv_transpose'}

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _per_axis(v, nd):
    return [v] * nd if isinstance(v, int) else list(v)


def _pad_pairs(v, nd):
    return [[v, v]] * nd if isinstance(v, int) else [list(p) for p in v]


def _torch_pads(pairs):
    """F.pad's flat list (last axis first) of [[before, after], ...] per spatial axis."""
    flat = []
    for before, after in reversed(pairs):
        flat += [before, after]
    return flat


def conv(x, w, b=None, strides=1, pads=0, dilations=1, groups=1):
    nd = w.dim() - 2
    pairs = _pad_pairs(pads, nd)
    kw = dict(stride=_per_axis(strides, nd), dilation=_per_axis(dilations, nd), groups=groups)
    if all(before == after for before, after in pairs):
        return CONV[nd](x, w, b, padding=[before for before, _ in pairs], **kw)
    return CONV[nd](F.pad(x, _torch_pads(pairs)), w, b, **kw)


def conv_transpose(x, w, b=None, strides=1, pads=0, dilations=1, groups=1, output_padding=0):
    nd = w.dim() - 2
    pairs = _pad_pairs(pads, nd)
    kw = dict(stride=_per_axis(strides, nd), output_padding=_per_axis(output_padding, nd), groups=groups, dilation=_per_axis(dilations, nd))
    if all(before == after for before, after in pairs):
        return CONV_TRANSPOSE[nd](x, w, b, padding=[before for before, _ in pairs], **kw)
    y = CONV_TRANSPOSE[nd](x, w, b, padding=0, **kw)
    for i, (before, after) in enumerate(pairs):
        y = y.narrow(2 + i, before, y.shape[2 + i] - before - after)
    return y


OPS = {'conv': conv, 'conv_transpose': conv_transpose}


def C(op, inputs, **attrs):
    return (op, inputs, attrs)


def cases(rnd):
    f32 = lambda s: rnd(s, dtype='FP32')
    return [
        C('conv', [rnd([2, 3, 9]), rnd([4, 3, 3]), rnd([4])], strides=[2], pads=[[1, 1]], dilations=[1], groups=1),
        C('conv', [rnd([2, 3, 8]), rnd([2, 3, 2])], strides=[1], pads=[[2, 0]], dilations=[3], groups=1),
        C('conv', [rnd([2, 4, 7, 6]), rnd([6, 2, 3, 3]), rnd([6])], strides=[2, 1], pads=[[1, 1], [0, 2]], dilations=[1, 2], groups=2),
        C('conv', [rnd([1, 3, 6, 6]), rnd([3, 1, 3, 3])], strides=1, pads=1, dilations=1, groups=3),
        C('conv', [rnd([1, 2, 5, 4, 5]), rnd([3, 2, 2, 3, 2]), rnd([3])], strides=[1, 2, 1], pads=[[1, 1], [0, 1], [1, 0]], dilations=[2, 1, 1], groups=1),
        C('conv', [f32([2, 4, 6, 6]), f32([5, 4, 3, 3]), f32([5])], strides=[1, 1], pads=[[1, 1], [1, 1]], dilations=[1, 1], groups=1),
        C('conv', [f32([1, 4, 5, 4, 4]), f32([4, 1, 3, 3, 3])], strides=2, pads=[[1, 0], [1, 1], [0, 1]], dilations=1, groups=4),
        C('conv_transpose', [rnd([2, 4, 5]), rnd([4, 3, 3]), rnd([3])], strides=[2], pads=[[1, 1]], dilations=[1], groups=1, output_padding=[1]),
        C('conv_transpose', [rnd([1, 4, 4, 3]), rnd([4, 2, 3, 2]), rnd([4])], strides=[2, 1], pads=[[1, 0], [0, 1]], dilations=[1, 2], groups=2, output_padding=[1, 1]),
        C('conv_transpose', [rnd([1, 3, 4, 4]), rnd([3, 1, 3, 3])], strides=2, pads=1, dilations=1, groups=3, output_padding=1),
        C('conv_transpose', [rnd([1, 2, 3, 2, 3]), rnd([2, 3, 2, 2, 2]), rnd([3])], strides=[2, 1, 2], pads=[[0, 1], [1, 0], [0, 0]], dilations=[1, 2, 1], groups=1, output_padding=[1, 0, 0]),
        C('conv_transpose', [f32([1, 4, 4, 4]), f32([4, 3, 3, 3]), f32([3])], strides=2, pads=1, dilations=1, groups=1, output_padding=1),
        C('conv_transpose', [f32([1, 4, 2, 3, 2]), f32([4, 2, 2, 3, 2])], strides=[1, 2, 2], pads=[[0, 0], [1, 2], [0, 1]], dilations=[2, 1, 1], groups=2, output_padding=[1, 1, 0]),
    ]
