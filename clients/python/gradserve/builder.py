"""GraphBuilder: writes gradserve graphs fluently, with the ops of the server's own catalogue.

    gs = gradserve.Client(url)
    b = gradserve.GraphBuilder(gs)              # or GraphBuilder(gs.ops()), or gs.builder()
    x = b.input("x", [None, 784]); w = b.input("w", [784, 10]); bias = b.input("b", [10])
    loss = x.matmul(w).add(bias).relu().sum().as_("loss")
    graph = b.output(loss).build()

Every op of ``GET /v1/ops`` is a method of a value (its first input) and of the builder (all inputs given), resolved
from the catalogue when it is called: there is no list of ops here to drift from the server's. Positional arguments
fill the op's tensor inputs (numbers and numpy arrays become constants of the first operand's datatype), then its
attributes in the catalogue's order; keyword arguments are attributes (or optional inputs by name, e.g.
``x.layer_norm(scale=s, bias=b)``). An attribute the op does not have, or a wrong number of inputs, raises
``TypeError`` at once. ``+ - * / ** @`` and unary ``-`` are add, sub, mul, div, pow, matmul and neg. The TypeScript builder's camelCase
names resolve to the same ops (``x.logSoftmax()`` is ``x.log_softmax()``), and ``as_`` is its ``as``.
"""

import re

import numpy as np

from . import _wire as W

__all__ = ["GraphBuilder", "Value", "Op"]

_DTYPES = ("FP32", "FP64", "INT32", "INT64", "BOOL")
_ALIASES = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64", "bool": "BOOL"}


def _dtype(d):
    if d is None:
        return None
    if not isinstance(d, str):
        return W.wire_dtype(d)
    t = _ALIASES.get(d, d.upper() if d.upper() in _DTYPES else None)
    if t is None:
        raise ValueError(f"unknown datatype {d!r} (FP32, FP64, INT32, INT64 or BOOL)")
    return t


class Op:
    """One op of the catalogue: its inputs (required, optional, or variadic) and its attributes."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.spec = spec
        self.doc = spec.get("doc", "")
        self.internal = bool(spec.get("internal"))
        ins = spec.get("inputs", [])
        if isinstance(ins, dict):
            self.variadic, self.min_inputs = ins["variadic"], int(ins.get("min", 0))
            self.required, self.optional = [], []
        else:
            self.variadic, self.min_inputs = None, 0
            self.required = [i for i in ins if not i.endswith("?")]
            self.optional = [i[:-1] for i in ins if i.endswith("?")]
        schema = spec.get("attrs") or {}
        self.attrs = list((schema.get("properties") or {}).keys())
        self.required_attrs = list(schema.get("required") or [])
        out = spec.get("outputDatatype", "")
        self._out = out

    def __repr__(self):
        return f"<op {self.name}({', '.join(self.signature())})>"

    def signature(self):
        if self.variadic:
            return [f"*{self.variadic}"] + [f"{a}=" for a in self.attrs]
        return self.required + [f"{o}=None" for o in self.optional] + [f"{a}=" for a in self.attrs]

    def output_dtype(self, names, dtypes, attrs):
        """The output's datatype when the catalogue's rule says it (else None)."""
        out = self._out
        if out in _DTYPES:
            return out
        if out.startswith("same as "):
            first = out[len("same as "):].split(" ")[0]
            if self.variadic and first == self.variadic:
                return next((d for d in dtypes if d), None)
            for n, d in zip(names, dtypes):
                if n == first:
                    return d
            return None
        if out.startswith("attrs.datatype"):
            return _dtype(attrs.get("datatype", "FP32"))
        if "`to`" in out:
            return _dtype(attrs.get("to")) if attrs.get("to") else None
        return None


def _catalogue(ops):
    if hasattr(ops, "ops") and callable(ops.ops):  # a Client
        ops = ops.ops()
    if isinstance(ops, dict):
        ops = ops["ops"]
    return {o["name"]: Op(o) for o in ops}


class Value:
    """A value of the graph being built (an input, a constant or a node). Ops are its methods."""

    __slots__ = ("_b", "name", "dtype")

    def __init__(self, builder, name, dtype=None):
        self._b = builder
        self.name = name
        self.dtype = dtype

    def __repr__(self):
        return f"<Value {self.name}{'' if self.dtype is None else ' ' + self.dtype}>"

    def as_(self, name):
        """Renames this value (a node made by the builder); returns it."""
        self._b._rename(self, name)
        return self

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        spec = self._b._op(op)

        def method(*args, **kwargs):
            return self._b._apply(spec, (self,) + args, kwargs)

        method.__name__ = op
        method.__doc__ = spec.doc
        return method

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._b.ops))

    # operators
    def __add__(self, o): return self._b._apply(self._b._op("add"), (self, o), {})
    def __radd__(self, o): return self._b._apply(self._b._op("add"), (self._b._lift(o, self), self), {})
    def __sub__(self, o): return self._b._apply(self._b._op("sub"), (self, o), {})
    def __rsub__(self, o): return self._b._apply(self._b._op("sub"), (self._b._lift(o, self), self), {})
    def __mul__(self, o): return self._b._apply(self._b._op("mul"), (self, o), {})
    def __rmul__(self, o): return self._b._apply(self._b._op("mul"), (self._b._lift(o, self), self), {})
    def __truediv__(self, o): return self._b._apply(self._b._op("div"), (self, o), {})
    def __rtruediv__(self, o): return self._b._apply(self._b._op("div"), (self._b._lift(o, self), self), {})
    def __pow__(self, o): return self._b._apply(self._b._op("pow"), (self, o), {})
    def __rpow__(self, o): return self._b._apply(self._b._op("pow"), (self._b._lift(o, self), self), {})
    def __matmul__(self, o): return self._b._apply(self._b._op("matmul"), (self, o), {})
    def __rmatmul__(self, o): return self._b._apply(self._b._op("matmul"), (self._b._lift(o, self), self), {})
    def __neg__(self): return self._b._apply(self._b._op("neg"), (self,), {})


class GraphBuilder:
    """Builds a graph with the ops of a catalogue: a :class:`gradserve.Client` (its ``GET /v1/ops`` is fetched once),
    the ``{"ops": [...]}`` answer, or its list. ``internal=True`` also offers the internal ops (those derivative
    graphs use)."""

    def __init__(self, ops, internal=False):
        cat = _catalogue(ops)
        self.ops = {k: v for k, v in cat.items() if internal or not v.internal}
        self._inputs, self._constants, self._nodes, self._outputs = {}, {}, [], []
        self._names = set()
        self._counter = 0

    # ------------------------------------------------------------ values

    def input(self, name, shape=None, datatype="FP32"):
        """A graph input; ``None`` dimensions accept any size, ``shape=None`` any rank."""
        dt = _dtype(datatype)
        self._claim(name)
        self._inputs[name] = {"datatype": dt} if shape is None else {"shape": list(shape), "datatype": dt}
        return Value(self, name, dt)

    def constant(self, value, name=None, datatype=None):
        """A constant from a number, a (nested) list or a numpy array (its own datatype unless ``datatype``)."""
        arr = W.as_array(value)
        if arr is None:
            arr = np.asarray(value, dtype=np.float32 if datatype is None else W.LITTLE[_dtype(datatype)])
        elif datatype is not None:
            arr = arr.astype(W.LITTLE[_dtype(datatype)].newbyteorder("="))
        name = name or self._fresh("const")
        self._claim(name)
        self._constants[name] = arr
        return Value(self, name, W.wire_dtype(arr.dtype))

    def output(self, *values):
        """Marks values as graph outputs (in order); returns the builder."""
        for v in values:
            n = v.name if isinstance(v, Value) else v
            if n not in self._outputs:
                self._outputs.append(n)
        return self

    def build(self):
        """The graph as a dict; constants are numpy arrays (the client encodes them, framed when large). Use
        :meth:`to_json` for a graph of wire tensors only."""
        g = {"inputs": {k: dict(v) for k, v in self._inputs.items()},
             "nodes": [{**n, "inputs": list(n["inputs"])} for n in self._nodes], "outputs": list(self._outputs)}
        if self._constants:
            g["constants"] = dict(self._constants)
        return g

    def to_json(self):
        """The graph with its constants as wire tensors (b64), ready for ``json.dumps``."""
        g = self.build()
        if "constants" in g:
            g["constants"] = W.encode_map(g["constants"], 0)
        return g

    # ------------------------------------------------------------ ops

    def op(self, op, inputs, attrs=None, name=None):
        """Any op of the catalogue by name, with its inputs as a list and its attrs as a dict."""
        return self._apply(self._op(op), tuple(inputs), dict(attrs or {}), name=name)

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        spec = self._op(op)

        def function(*args, **kwargs):
            return self._apply(spec, args, kwargs)

        function.__name__ = op
        function.__doc__ = spec.doc
        return function

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self.ops))

    def _op(self, op):
        spec = self.ops.get(op)
        if spec is None:
            # the TypeScript builder's spellings work too: logSoftmax is log_softmax
            spec = self.ops.get(re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), op))
        if spec is None:
            raise AttributeError(f"GraphBuilder: the server's catalogue has no op {op!r}")
        return spec

    def _lift(self, v, like=None):
        if isinstance(v, Value):
            if v._b is not self:
                raise ValueError(f"value {v.name!r} belongs to another GraphBuilder")
            return v
        if isinstance(v, (np.ndarray, np.generic)) or W.as_array(v) is not None:
            return self.constant(v)
        if isinstance(v, (int, float, bool, list, tuple)):
            dt = like.dtype if isinstance(like, Value) and like.dtype else "FP32"
            return self.constant(v, datatype=dt)
        raise TypeError(f"not an operand: {v!r} (a Value, a number or an array)")

    def _apply(self, spec, args, kwargs, name=None):
        name = kwargs.pop("name", name)
        attrs = {}
        inputs = []
        if spec.variadic:
            rest = []
            for a in args:
                if isinstance(a, Value):
                    inputs.append(a)
                elif isinstance(a, (list, tuple)) and a and all(isinstance(x, Value) for x in a):
                    inputs.extend(a)
                else:
                    rest.append(a)
            if len(inputs) < spec.min_inputs:
                raise TypeError(f"{spec.name}: needs at least {spec.min_inputs} inputs, got {len(inputs)}")
        else:
            args = list(args)
            # numbers take the datatype of the operands they meet (where's a and b, not its BOOL condition)
            typed = [a for a in args if isinstance(a, Value) and a.dtype]
            like = next((a for a in typed if a.dtype != "BOOL"), typed[0] if typed else None)
            n_req = len(spec.required)
            if len(args) < n_req:
                missing = [r for r in spec.required[len(args):] if r not in kwargs]
                for r in spec.required[len(args):]:
                    if r in kwargs:
                        args.append(kwargs.pop(r))
                if missing:
                    raise TypeError(f"{spec.name}: missing input(s) {', '.join(missing)} (inputs: {', '.join(spec.signature())})")
            inputs = [self._lift(a, like) for a in args[:n_req]]
            rest = args[n_req:]
            optional = []
            for o in spec.optional:
                if rest and isinstance(rest[0], Value):
                    optional.append(rest.pop(0))
                elif o in kwargs:
                    optional.append(self._lift(kwargs.pop(o), like))
                else:
                    break
            for o in spec.optional[len(optional):]:
                if o in kwargs:
                    raise TypeError(f"{spec.name}: optional inputs are left off from the end: {o} needs "
                                    f"{', '.join(spec.optional[:spec.optional.index(o)])} first")
            inputs += optional
        free = [a for a in spec.attrs if a not in kwargs]
        if len(rest) > len(free):
            raise TypeError(f"{spec.name}: too many arguments (signature: {spec.name}({', '.join(spec.signature())}))")
        attrs.update(zip(free, rest))
        for k, v in kwargs.items():
            if k not in spec.attrs:
                known = ", ".join(spec.attrs) or "none"
                raise TypeError(f"{spec.name}: no attribute {k!r} in the catalogue (attributes: {known})")
            attrs[k] = v
        missing = [a for a in spec.required_attrs if a not in attrs]
        if missing:
            raise TypeError(f"{spec.name}: missing attribute(s) {', '.join(missing)}")
        for v in inputs:
            if not isinstance(v, Value):
                raise TypeError(f"{spec.name}: inputs must be values of this builder, got {v!r}")
            if v._b is not self:
                raise ValueError(f"value {v.name!r} belongs to another GraphBuilder")
        node_name = name or self._fresh(spec.name + "_")
        self._claim(node_name)
        node = {"name": node_name, "op": spec.name, "inputs": [v.name for v in inputs]}
        attrs = {k: _plain(v) for k, v in attrs.items()}
        if attrs:
            node["attrs"] = attrs
        self._nodes.append(node)
        names = [spec.variadic] * len(inputs) if spec.variadic else (spec.required + spec.optional)[:len(inputs)]
        return Value(self, node_name, spec.output_dtype(names, [v.dtype for v in inputs], attrs))

    # ------------------------------------------------------------ names

    def _fresh(self, prefix):
        while True:
            n = f"{prefix}{self._counter}"
            self._counter += 1
            if n not in self._names:
                return n

    def _claim(self, name):
        if name in self._names:
            raise ValueError(f"GraphBuilder: the name {name!r} is already used")
        self._names.add(name)

    def _rename(self, v, name):
        if v.name == name:
            return
        node = next((n for n in self._nodes if n["name"] == v.name), None)
        if node is None:
            raise ValueError(f"GraphBuilder: only nodes can be renamed ({v.name!r} is an input or constant)")
        self._claim(name)
        self._names.discard(v.name)
        old = v.name
        node["name"] = name
        for n in self._nodes:
            n["inputs"] = [name if i == old else i for i in n["inputs"]]
        self._outputs = [name if o == old else o for o in self._outputs]
        v.name = name


def _plain(v):
    """Attribute values as JSON: numpy scalars and arrays become Python numbers and lists; tuples lists."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v
