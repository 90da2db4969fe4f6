"""``Client``: one method per endpoint of the gradserve wire contract, numpy arrays in and out."""

import json
import urllib.parse

import numpy as np

from . import _wire as W
from ._http import Transport
from .errors import InvalidResponseError

__all__ = ["Client", "Result", "BINARY_THRESHOLD_BYTES"]

#: Default of ``binary_threshold_bytes``: above a few KiB, JSON number text and base64 cost more than framing.
BINARY_THRESHOLD_BYTES = 4096
_JSON_ACCEPT = "application/json, application/problem+json"
_FRAMED_ACCEPT = "application/octet-stream, application/problem+json"


class Result(dict):
    """An answer as a dict (``r["gradients"]["w"]``); ``headers`` holds the HTTP headers (``Gradserve-Batching``,
    ``X-Request-Id``, ...)."""

    __slots__ = ("headers",)

    def __init__(self, data, headers=None):
        super().__init__(data)
        self.headers = headers


def _quote(name):
    return urllib.parse.quote(name, safe="")


class Client:
    """A gradserve client.

    ``Client(url, api_key=None, timeout=60.0, retries=2)``: ``api_key`` is sent as ``Authorization: Bearer``;
    ``timeout`` (seconds) bounds every socket operation; ``retries`` is how many times a call is tried again after a
    503 that carries ``Retry-After`` (or is OVERLOADED; the wait is the header's, up to ``max_retry_wait``) or after a
    connection reset (every gradserve endpoint is a pure function of its request, so all of them are idempotent).
    Connections are kept alive in a pool of up to ``pool_size`` idle connections; one client may be shared by threads.

    Tensors: numpy arrays (or array-likes such as CPU torch tensors) go in; float32 -> FP32, float64 -> FP64, int32,
    int64, bool. Python numbers and nested lists travel as shorthand (the graph's datatype). A request whose arrays
    hold more than ``binary_threshold_bytes`` (4096) in all travels in binary framing and asks for a framed answer,
    whose arrays are then views of the one buffer the answer was read into (``binary="always"``/``"never"`` forces
    either way). Smaller requests are JSON, arrays above ``b64_threshold`` elements as base64, and ask for
    ``response_encoding`` ("b64") answers. Every tensor method takes ``encoding=`` to choose the answer's encoding.

    Wherever a graph goes, a string names a model of the server's repository (``{"model": name}``).
    """

    def __init__(self, url, api_key=None, timeout=60.0, retries=2, *, binary="auto",
                 binary_threshold_bytes=BINARY_THRESHOLD_BYTES, b64_threshold=64, response_encoding="b64",
                 pool_size=8, max_retry_wait=30.0, headers=None):
        if binary not in ("auto", "always", "never", True, False):
            raise ValueError('binary must be "auto", "always" or "never"')
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.binary = {True: "always", False: "never"}.get(binary, binary)
        self.binary_threshold_bytes = binary_threshold_bytes
        self.b64_threshold = b64_threshold
        self.response_encoding = response_encoding
        self.headers = dict(headers or {})
        self._t = Transport(self.url, timeout=timeout, retries=retries, pool_size=pool_size,
                            max_retry_wait=max_retry_wait)

    @property
    def timeout(self):
        return self._t.timeout

    @property
    def retries(self):
        return self._t.retries

    def close(self):
        """Closes the idle connections (the client stays usable)."""
        self._t.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Client({self.url!r})"

    # ------------------------------------------------------------ plumbing

    def _headers(self, accept, content_type=None, extra=None):
        h = {"Accept": accept}
        if content_type:
            h["Content-Type"] = content_type
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        if self.headers:
            h.update(self.headers)
        if extra:
            h.update(extra)
        return h

    def _frame_for(self, maps):
        """A Frame when the arrays of these tensor maps (inputs, cotangents, ..., graph constants) go framed."""
        if self.binary == "never":
            return None
        total, arrays = 0, 0
        for m in maps:
            if not m:
                continue
            for v in m.values():
                if isinstance(v, (dict, list, tuple, int, float, bool)):
                    continue
                a = W.as_array(v)
                if a is not None:
                    arrays += 1
                    total += a.nbytes
        if arrays == 0:
            return None
        if self.binary == "always" or total > self.binary_threshold_bytes:
            return W.Frame()
        return None

    def _send_json(self, method, path, body, frame=None, idempotent=True, accept=None):
        """Sends a JSON body (framed when ``frame`` holds blobs); returns the transport's Answer."""
        if body is not None:
            body = {k: v for k, v in body.items() if v is not None}
        if accept is None:
            accept = _FRAMED_ACCEPT if body is not None and body.get("encoding") == "binary" else _JSON_ACCEPT
        if body is None:
            return self._t.request(method, path, self._headers(accept), None, idempotent)
        if frame is not None and len(frame):
            parts, head = frame.parts(body)
            headers = self._headers(accept, W.FRAMED, {W.HEADER_LENGTH: str(head)})
            return self._t.request(method, path, headers, parts, idempotent)
        return self._t.request(method, path, self._headers(accept, "application/json"), [W.dumps(body)], idempotent)

    def request(self, method, path, body=None, idempotent=None):
        """One exchange with a JSON body (or none); returns the parsed JSON answer. ``idempotent`` (default: True for
        GET/HEAD and for the service's own ``/v1``, ``/v2`` paths, which are all pure) allows retries on resets."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or path.startswith(("/v1/", "/v2"))
        return self._send_json(method, path, body, idempotent=idempotent).json

    def _graph(self, graph, frame):
        if isinstance(graph, str):
            return {"model": graph}
        if hasattr(graph, "build") and callable(graph.build):  # a GraphBuilder
            graph = graph.build()
        if not isinstance(graph, dict):
            raise TypeError("graph must be a graph dict, a GraphBuilder or the name of a repository model")
        if graph.get("constants"):
            graph = {**graph, "constants": W.encode_map(graph["constants"], self.b64_threshold, frame)}
        return {"graph": graph}

    @staticmethod
    def _constants(graph):
        if isinstance(graph, dict):
            return graph.get("constants")
        if hasattr(graph, "build") and callable(graph.build):
            return graph.build().get("constants")
        return None

    def _post(self, path, graph, inputs, encoding=None, maps=None, tensor_answer=True, **fields):
        """POST a request with tensors: (JSON, binary section or None, headers)."""
        maps = maps or {}
        frame = self._frame_for([inputs, self._constants(graph), *maps.values()])
        body = self._graph(graph, frame)
        body["inputs"] = W.encode_map(inputs or {}, self.b64_threshold, frame)
        body.update(fields)
        for k, m in maps.items():
            body[k] = W.encode_map(m, self.b64_threshold, frame)
        if tensor_answer:
            body["encoding"] = encoding or ("binary" if frame is not None else self.response_encoding)
        elif encoding:
            body["encoding"] = encoding
        a = self._send_json("POST", path, body, frame)
        if not isinstance(a.json, dict):
            raise InvalidResponseError("INVALID_RESPONSE", a.status, f"POST {path}: expected a JSON object")
        return a.json, a.section, a.headers

    # ------------------------------------------------------------ /v1: values and derivatives

    def evaluate(self, graph, inputs, outputs=None, encoding=None):
        """``{"outputs": {name: array}}``: the values of ``outputs`` (default: the graph's outputs)."""
        r, sec, h = self._post("/v1/evaluate", graph, inputs, encoding, outputs=None if outputs is None else list(outputs))
        return Result({"outputs": W.decode_map(r.get("outputs"), sec)}, h)

    def grad(self, graph, inputs, of, wrt, encoding=None, per_example=None):
        """Gradient of the one-element value ``of`` with respect to ``wrt``: ``{"outputs", "gradients"}``.
        ``per_example={"axis": 0, "inputs": ["x", "labels"]}`` gives one gradient per slice of those inputs (a sliced
        input's gradient in its own shape, any other with a new leading axis of size N)."""
        pe = None if per_example is None else {"axis": int(per_example["axis"]), "inputs": list(per_example["inputs"])}
        r, sec, h = self._post("/v1/grad", graph, inputs, encoding, of=of, wrt=list(wrt), per_example=pe)
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "gradients": W.decode_map(r.get("gradients"), sec)}, h)

    def vjp(self, graph, inputs, cotangents, wrt, encoding=None, batched=False):
        """Vector-Jacobian products: ``{"outputs", "gradients"}``. ``batched=True``: every cotangent has one extra
        leading axis of size B, and so does every gradient."""
        r, sec, h = self._post("/v1/vjp", graph, inputs, encoding, {"cotangents": cotangents}, wrt=list(wrt),
                               batched=True if batched else None)
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "gradients": W.decode_map(r.get("gradients"), sec)}, h)

    def jvp(self, graph, inputs, tangents, of=None, encoding=None, batched=False):
        """Jacobian-vector products: ``{"outputs", "tangents"}``; inputs without a tangent have a zero tangent."""
        r, sec, h = self._post("/v1/jvp", graph, inputs, encoding, {"tangents": tangents},
                               of=None if of is None else list(of), batched=True if batched else None)
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "tangents": W.decode_map(r.get("tangents"), sec)}, h)

    def jacobian(self, graph, inputs, of, wrt, mode=None, encoding=None):
        """Full Jacobians, shape ``of.shape + wrt.shape``: ``{"outputs", "jacobians": {of: {wrt: array}}, "mode"}``."""
        r, sec, h = self._post("/v1/jacobian", graph, inputs, encoding, of=list(of), wrt=list(wrt), mode=mode)
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "jacobians": W.decode_map2(r.get("jacobians"), sec),
                       "mode": r.get("mode")}, h)

    def hvp(self, graph, inputs, of, vectors, encoding=None, batched=False):
        """Hessian-vector products of the one-element ``of``: ``{"outputs", "gradients", "hvp"}``. ``batched=True``:
        every vector has one extra leading axis of size B, and so does every hvp (the gradients stay plain)."""
        r, sec, h = self._post("/v1/hvp", graph, inputs, encoding, {"vectors": vectors}, of=of,
                               batched=True if batched else None)
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "gradients": W.decode_map(r.get("gradients"), sec),
                       "hvp": W.decode_map(r.get("hvp"), sec)}, h)

    def hessian(self, graph, inputs, of, wrt, encoding=None):
        """Hessian blocks, shape ``wrt_i.shape + wrt_j.shape``: ``{"outputs", "hessians": {wrt_i: {wrt_j: array}}}``."""
        r, sec, h = self._post("/v1/hessian", graph, inputs, encoding, of=of, wrt=list(wrt))
        return Result({"outputs": W.decode_map(r.get("outputs"), sec), "hessians": W.decode_map2(r.get("hessians"), sec)}, h)

    def gradcheck(self, graph, inputs, of, wrt, eps=None, atol=None, rtol=None):
        """Analytic vs central finite differences in FP64: ``{"ok", "maxAbsError", "maxRelError", "perInput"}``
        (non-finite errors as floats)."""
        r, _, h = self._post("/v1/gradcheck", graph, inputs, tensor_answer=False, of=of, wrt=list(wrt),
                             eps=eps, atol=atol, rtol=rtol)
        return Result(_floats(r), h)

    def transform(self, graph, transform, wrt, of=None):
        """The symbolic derivative graph (``transform``: "grad", "vjp" or "jvp"); evaluate it, or transform it again.
        Its constants come back as wire tensors (b64), ready to send on."""
        frame = self._frame_for([self._constants(graph)])
        body = {**self._graph(graph, frame), "transform": transform, "of": of, "wrt": list(wrt)}
        if transform == "vjp" and isinstance(of, str):
            body["of"] = [of]
        a = self._send_json("POST", "/v1/transform", body, frame)
        return a.json["graph"]

    def shapes(self, graph, inputs):
        """Shape inference and cost estimate, nothing executed: ``{"values": {name: {shape, datatype}}, "flops",
        "peakBytes"}``. Inputs may be arrays or ``{"shape": [...], "datatype": ...}`` without data."""
        r, _, h = self._post("/v1/shapes", graph, inputs, tensor_answer=False)
        return Result(r, h)

    def import_onnx(self, onnx_bytes, weights="b64", dims=None):
        """POST /v1/import/onnx: ``{"graph", "parameters": {name: array (or {shape, datatype} with
        weights="none")}, "notes"}``. ``weights="binary"`` has the weights come back framed. ``dims`` fixes symbolic
        dimensions, e.g. ``{"batch": 8}``."""
        query = {"weights": weights}
        if dims:
            query["dims"] = ",".join(f"{k}:{v}" for k, v in dims.items())
        accept = _FRAMED_ACCEPT if weights == "binary" else _JSON_ACCEPT
        a = self._t.request("POST", f"/v1/import/onnx?{urllib.parse.urlencode(query)}",
                            self._headers(accept, "application/onnx"), [memoryview(onnx_bytes)])
        r = a.json
        params = r.get("parameters", {})
        if weights != "none":
            params = W.decode_map(params, a.section)
        return Result({"graph": r["graph"], "parameters": params, "notes": r.get("notes", [])}, a.headers)

    def ops(self):
        """The op catalogue: ``{"ops": [{name, inputs, attrs (JSON Schema), outputDatatype, differentiable,
        conventions, doc, internal}]}``."""
        return self.request("GET", "/v1/ops")

    def builder(self):
        """A :class:`gradserve.GraphBuilder` whose ops are those of this server's catalogue (fetched once)."""
        from .builder import GraphBuilder
        return GraphBuilder(self)

    # ------------------------------------------------------------ operations

    def metrics(self):
        """The Prometheus text exposition of ``GET /metrics``."""
        return bytes(self._t.request("GET", "/metrics", self._headers("text/plain, */*")).raw).decode("utf-8")

    def openapi(self):
        return self.request("GET", "/openapi.json")

    # ------------------------------------------------------------ Open Inference Protocol (/v2)

    def live(self):
        """Liveness by status code: True on 200, False on 503."""
        return self._health("/v2/health/live")

    def ready(self):
        return self._health("/v2/health/ready")

    def server_metadata(self):
        return self.request("GET", "/v2")

    def model_metadata(self, model, version=None):
        """``{name, versions, platform, inputs, outputs, parameters?}`` of a repository model."""
        return self.request("GET", self._model_path(model, version))

    def model_ready(self, model, version=None):
        """True when the model loads, False when it is broken (503); an unknown model raises NotFoundError."""
        return self._health(self._model_path(model, version) + "/ready")

    @staticmethod
    def _model_path(model, version):
        p = f"/v2/models/{_quote(model)}"
        return p if version is None else f"{p}/versions/{_quote(str(version))}"

    def infer(self, model, inputs, outputs=None, parameters=None, id=None, version=None, binary_threshold=None,
              binary_outputs=None):
        """Open Inference Protocol inference on a repository model; returns ``{output name: array}`` (the whole
        answer, with ``model_name``, ``model_version`` and ``id``, is :meth:`infer_response`). ``outputs`` items are names or ``{"name", "parameters"}``; an output
        ``{"name": "grad:w", "parameters": {"of": "loss"}}`` is the gradient of ``loss`` with respect to ``w``.
        Inputs with more than ``binary_threshold`` elements (default: ``b64_threshold``) travel in the binary tensor
        data extension, and the outputs come back in binary when any input went so (``binary_outputs``)."""
        return self.infer_response(model, inputs, outputs, parameters, id, version, binary_threshold,
                                   binary_outputs)["outputs"]

    def infer_response(self, model, inputs, outputs=None, parameters=None, id=None, version=None,
                       binary_threshold=None, binary_outputs=None):
        """As :meth:`infer`, the whole answer: ``{"model_name", "model_version", "id", "outputs": {name: array}}``."""
        threshold = self.b64_threshold if binary_threshold is None else binary_threshold
        blobs, wire_inputs = [], []
        for name, v in inputs.items():
            arr = W.as_array(v)
            if arr is None:
                arr = np.asarray(v, dtype=np.float32)
            dt = W.wire_dtype(arr.dtype)
            item = {"name": name, "shape": list(map(int, arr.shape)), "datatype": dt}
            if self.binary != "never" and (self.binary == "always" or arr.size > threshold):
                little = W.little_endian(arr)
                blobs.append(memoryview(little.reshape(-1).view(np.uint8)))
                item["parameters"] = {"binary_data_size": little.nbytes}
            else:
                item["data"] = [W.wire_scalar(x) for x in arr.reshape(-1).tolist()]
            wire_inputs.append(item)
        if binary_outputs is None:
            binary_outputs = bool(blobs)
        params = dict(parameters or {})
        if binary_outputs:
            params["binary_data_output"] = True
        body = {"id": id, "parameters": params or None, "inputs": wire_inputs,
                "outputs": None if outputs is None else [o if isinstance(o, dict) else {"name": o} for o in outputs]}
        body = {k: v for k, v in body.items() if v is not None}
        path = self._model_path(model, version) + "/infer"
        head = W.dumps(body)
        if blobs:
            headers = self._headers(_JSON_ACCEPT, W.FRAMED, {W.HEADER_LENGTH: str(len(head))})
            a = self._t.request("POST", path, headers, [head] + [b for b in blobs if b.nbytes])
        else:
            a = self._t.request("POST", path, self._headers(_JSON_ACCEPT, "application/json"), [head])
        r, sec = a.json, a.section
        outs, off = {}, 0
        for o in r.get("outputs", []):
            size = (o.get("parameters") or {}).get("binary_data_size")
            if size is None:
                outs[o["name"]] = W.decode(o)
                continue
            if sec is None or off + size > len(sec):
                raise InvalidResponseError("INVALID_RESPONSE", a.status, f"output {o['name']!r}: binary_data_size {size} runs past the answer")
            outs[o["name"]] = W.view(sec, off, size, W.LITTLE[o["datatype"]], tuple(o["shape"]))
            off += size
        return Result({"model_name": r.get("model_name"), "model_version": r.get("model_version"), "id": r.get("id"),
                       "outputs": outs}, a.headers)

    def _health(self, path):
        from .errors import UnavailableError
        try:
            self._t.request("GET", path, self._headers(_JSON_ACCEPT))
            return True
        except UnavailableError:
            return False


def _floats(r):
    """gradcheck errors may be the strings "NaN"/"Infinity": as floats."""
    def f(v):
        return W._NONFINITE.get(v, v) if isinstance(v, str) else v
    out = {k: f(v) for k, v in r.items() if k != "perInput"}
    out["perInput"] = {k: {kk: f(vv) for kk, vv in v.items()} for k, v in (r.get("perInput") or {}).items()}
    return out
