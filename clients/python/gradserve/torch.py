"""PyTorch bridge: a gradserve graph (or repository model) as a differentiable PyTorch function.

    import torch, gradserve
    from gradserve.torch import remote

    gs = gradserve.Client("http://127.0.0.1:8080")
    f = remote(graph, gs)                 # the graph's inputs in order, or by name as keywords
    y = f(x, w)                           # forward: POST /v1/evaluate
    y.sum().backward()                    # backward: POST /v1/vjp
    torch.autograd.gradcheck(f, (x, w))   # float64 graphs pass gradcheck and gradgradcheck

Forward evaluates the graph remotely; backward is a torch.autograd.Function that calls ``/v1/vjp`` with the incoming
gradients as cotangents; the backward of that (double backward, e.g. ``create_graph=True``, Hessian-vector products,
gradient penalties) evaluates the derivative graph from ``/v1/transform`` ("vjp") the same way, and so on to any order.
Tensors travel as numpy arrays (CPU; results are moved to the first input's device). Integer and bool inputs carry no
gradient, and integer or bool outputs are marked non-differentiable.

A repository model (``remote("mlp", gs)``) uses its stored weights; its first derivatives work as above, while higher
ones need the derivative graph's weights, which the service does not hand out: pass every parameter as a keyword
(``f(x, **weights)``) or use a graph.
"""

import json

import numpy as np
import torch

from . import _wire as W

__all__ = ["remote", "RemoteFunction"]

_FLOAT = (torch.float32, torch.float64)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t


def _torch(a, like):
    t = torch.from_numpy(np.asarray(a))
    return t if like is None or like.device.type == "cpu" else t.to(like.device)


def _sinks(graph):
    used = {i for n in graph.get("nodes", []) for i in n.get("inputs", [])}
    return [n["name"] for n in graph.get("nodes", []) if n["name"] not in used]


class RemoteFunction:
    """A graph (dict or GraphBuilder) or the name of a repository model, callable on torch tensors.

    ``inputs``: the names taken positionally (default: the graph's inputs in declared order; a model's inputs without
    its parameters); any input may also be given by name as a keyword. ``outputs``: the values returned (default: the
    graph's outputs); one output is returned as a tensor, several as a tuple."""

    def __init__(self, source, client, inputs=None, outputs=None):
        if hasattr(source, "build") and callable(source.build):
            source = source.build()
        self.source = source
        self.client = client
        self.is_model = isinstance(source, str)
        if self.is_model:
            meta = client.model_metadata(source)
            self.inputs = list(inputs) if inputs is not None else [i["name"] for i in meta.get("inputs", [])]
            self.outputs = list(outputs) if outputs is not None else [o["name"] for o in meta.get("outputs", [])]
        else:
            self.inputs = list(inputs) if inputs is not None else list(source.get("inputs", {}))
            self.outputs = list(outputs) if outputs is not None else list(source.get("outputs") or _sinks(source))
        self._derived = {}
        self.order = 0

    def __repr__(self):
        what = self.source if self.is_model else f"graph of {len(self.source.get('nodes', []))} nodes"
        return f"RemoteFunction({what}; ({', '.join(self.inputs)}) -> ({', '.join(self.outputs)}))"

    def __call__(self, *args, **kwargs):
        if len(args) > len(self.inputs):
            raise TypeError(f"takes {len(self.inputs)} positional inputs ({', '.join(self.inputs)}), got {len(args)}")
        named = dict(zip(self.inputs, args))
        for k, v in kwargs.items():
            if k in named:
                raise TypeError(f"input {k!r} given twice")
            named[k] = v
        missing = [n for n in self.inputs if n not in named]
        if missing:
            raise TypeError(f"missing input(s): {', '.join(missing)}")
        names = tuple(named)
        tensors = [v if isinstance(v, torch.Tensor) else torch.as_tensor(v) for v in named.values()]
        outs = _Forward.apply(self, names, *tensors)
        return outs[0] if len(outs) == 1 else outs

    def vjp_function(self, names, of, wrt):
        """The derivative graph of ``sum_o cotangent_o · ∂o/∂wrt`` (``/v1/transform``) as a RemoteFunction taking the
        inputs ``names`` and then one cotangent per ``of``, returning the gradients of ``wrt``. Cached. Its cotangent
        inputs and gradient outputs are renamed by derivative order, so that transforming it again never clashes
        with the names the previous transform chose."""
        key = (tuple(names), tuple(of), tuple(wrt))
        fn = self._derived.get(key)
        if fn is None:
            if self.is_model:
                raise RuntimeError(
                    f"higher derivatives of repository model {self.source!r} need its derivative graph's weights, "
                    "which the service does not hand out: give every parameter as a keyword, or use the graph")
            g = self.client.transform(self.source, "vjp", wrt=list(wrt), of=list(of))
            k = self.order + 1
            cts = [f"ct{k}:{o}" for o in of]
            grads = [f"d{k}:{w}" for w in wrt]
            g = _rename(g, {**{f"cotangent:{o}": c for o, c in zip(of, cts)},
                            **{f"grad:{w}": d for w, d in zip(wrt, grads)}})
            fn = RemoteFunction(g, self.client, inputs=list(names) + cts, outputs=grads)
            fn.order = k
            self._derived[key] = fn
        return fn


def _rename(graph, mapping):
    """The graph with values renamed (inputs, constants, nodes, and every reference to them)."""
    m = mapping.get
    g = dict(graph)
    g["inputs"] = {m(k, k): v for k, v in graph.get("inputs", {}).items()}
    if graph.get("constants"):
        g["constants"] = {m(k, k): v for k, v in graph["constants"].items()}
    g["nodes"] = [{**n, "name": m(n["name"], n["name"]), "inputs": [m(i, i) for i in n.get("inputs", [])]}
                  for n in graph.get("nodes", [])]
    if graph.get("outputs") is not None:
        g["outputs"] = [m(o, o) for o in graph["outputs"]]
    return g


def remote(graph_or_model, client, inputs=None, outputs=None):
    """A graph (dict or GraphBuilder) or a repository model's name as a differentiable PyTorch function: see
    :class:`RemoteFunction` and the module's documentation."""
    return RemoteFunction(graph_or_model, client, inputs=inputs, outputs=outputs)


def _evaluate(fn, names, tensors):
    r = fn.client.evaluate(fn.source, {n: _np(t) for n, t in zip(names, tensors)}, outputs=fn.outputs)
    return r["outputs"]


def _vjp(fn, names, tensors, cotangents, wrt):
    r = fn.client.vjp(fn.source, {n: _np(t) for n, t in zip(names, tensors)},
                      cotangents={o: _np(c) for o, c in cotangents.items()}, wrt=list(wrt))
    return r["gradients"]


class _Forward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, names, *tensors):
        outs = _evaluate(fn, names, tensors)
        like = tensors[0] if tensors else None
        result = tuple(_torch(outs[o], like) for o in fn.outputs)
        ctx.fn, ctx.names = fn, names
        ctx.float_out = tuple(r.dtype in _FLOAT for r in result)
        ctx.save_for_backward(*tensors)
        ctx.mark_non_differentiable(*[r for r, f in zip(result, ctx.float_out) if not f])
        return result

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        fn, names = ctx.fn, ctx.names
        want = [i for i, t in enumerate(tensors) if ctx.needs_input_grad[2 + i] and t.dtype in _FLOAT]
        result = [None] * len(tensors)
        if want:
            of = tuple(o for o, f in zip(fn.outputs, ctx.float_out) if f)
            cts = [g for g, f in zip(grads, ctx.float_out) if f]
            wrt = tuple(names[i] for i in want)
            got = _VJP.apply(fn, names, of, wrt, len(tensors), *tensors, *cts)
            for i, g in zip(want, got):
                result[i] = g
        return (None, None, *result)


class _VJP(torch.autograd.Function):
    """(inputs, cotangents) -> gradients of ``wrt`` via /v1/vjp; its own backward goes through the derivative graph."""

    @staticmethod
    def forward(ctx, fn, names, of, wrt, n, *args):
        x, cts = args[:n], args[n:]
        grads = _vjp(fn, names, x, dict(zip(of, cts)), wrt)
        like = x[0] if x else None
        ctx.fn, ctx.names, ctx.of, ctx.wrt, ctx.n = fn, names, of, wrt, n
        ctx.save_for_backward(*args)
        return tuple(_torch(grads[w], like) for w in wrt)

    @staticmethod
    def backward(ctx, *ggs):
        args = ctx.saved_tensors
        fn, names, of, wrt, n = ctx.fn, ctx.names, ctx.of, ctx.wrt, ctx.n
        # the VJP as a graph: the original inputs and one cotangent per output in, the gradients out
        d = fn.vjp_function(names, of, wrt)
        names2 = tuple(d.inputs)
        want = [i for i, t in enumerate(args) if ctx.needs_input_grad[5 + i] and t.dtype in _FLOAT]
        result = [None] * len(args)
        if want:
            got = _VJP.apply(d, names2, tuple(d.outputs), tuple(names2[i] for i in want), len(args), *args, *ggs)
            for i, g in zip(want, got):
                result[i] = g
        return (None, None, None, None, None, *result)
