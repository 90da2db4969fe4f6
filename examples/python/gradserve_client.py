"""A small gradserve client: the Python standard library plus numpy.

numpy arrays go in and come out. A request whose arrays hold more than ``binary_threshold_bytes`` (4 KiB) in all
travels in binary framing: a JSON header, then the arrays' raw little-endian bytes, the header's length in
``Inference-Header-Content-Length``; the answer comes back framed too and its arrays are views of the bytes read.
Smaller requests are JSON, arrays above ``b64_threshold`` elements as base64 (exact and compact). ``binary="always"``
or ``binary="never"`` forces either. Service errors (application/problem+json) are raised as ``GradserveError``
carrying ``code``, ``status``, ``detail`` and ``errors``.

    from gradserve_client import Client
    gs = Client("http://127.0.0.1:8080")
    r = gs.grad(graph, {"x": x, "w": w}, of="loss", wrt=["x", "w"])
    r["gradients"]["w"]          # a numpy array

A repository model is used by name wherever a graph goes: ``gs.grad("mlp", {"x": x}, of="loss", wrt=["fc1.weight"])``
sends ``"model": "mlp"`` (its stored weights are then default inputs). ``gs.import_onnx(open("m.onnx", "rb").read())``
returns the graph an ONNX model translates to, with its parameters as numpy arrays.
"""

import base64
import json
import math
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

__all__ = ["Client", "GradserveError"]

_TO_WIRE = {
    np.dtype("float32"): "FP32",
    np.dtype("float64"): "FP64",
    np.dtype("int32"): "INT32",
    np.dtype("int64"): "INT64",
    np.dtype("bool"): "BOOL",
}
_FROM_WIRE = {
    "FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
    "float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64, "bool": np.bool_,
}
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FRAMED = "application/octet-stream"
_HEADER_LENGTH = "Inference-Header-Content-Length"


class GradserveError(Exception):
    """A failed call. ``code`` is the service's catalogue code (e.g. ``SHAPE_MISMATCH``), or ``HTTP_ERROR`` /
    ``NETWORK_ERROR`` when the answer had no problem+json body."""

    def __init__(self, code, status, detail, title=None, errors=None, retry_after=None, body=None):
        super().__init__(f"{code} ({status}): {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = errors or []
        self.retry_after = retry_after
        self.body = body


# ------------------------------------------------------------------ tensors

def _wire_scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return f


def _shorthand(v):
    if isinstance(v, (list, tuple)):
        return [_shorthand(x) for x in v]
    return _wire_scalar(v)


class Frame:
    """The binary section of one request, filled while its JSON body is built (binary framing)."""

    def __init__(self):
        self._blobs = []  # (wire dict, little-endian bytes, element width)

    def add(self, value, dt):
        little = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        ref = {"shape": [int(d) for d in value.shape], "datatype": dt, "binary_data_size": int(little.nbytes),
               "binary_data_offset": 0}
        self._blobs.append((ref, little, little.itemsize))
        return ref

    def __len__(self):
        return len(self._blobs)

    def build(self, body):
        """The framed body and its headers. Widest elements first and the JSON padded to 8 bytes, so every blob
        starts at a multiple of its element width and the service uses it in place."""
        order = sorted(self._blobs, key=lambda b: -b[2])
        offset = 0
        for ref, little, _ in order:
            ref["binary_data_offset"] = offset
            offset += little.nbytes
        head = json.dumps(body, allow_nan=False).encode("utf-8")
        head += b" " * (-len(head) % 8)
        data = b"".join([head] + [little.reshape(-1).view(np.uint8) for _, little, _ in order])
        return data, {"Content-Type": _FRAMED, _HEADER_LENGTH: str(len(head))}


def encode_tensor(value, b64_threshold=64, frame=None):
    """numpy array -> wire tensor (into ``frame`` when the request is framed). Python numbers and (nested) lists stay
    wire shorthand, so their datatype is the one the graph declares; dicts are taken to be wire tensors already."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, np.ndarray):
        return _shorthand(value)
    if value.dtype not in _TO_WIRE:
        raise TypeError(f"unsupported numpy dtype {value.dtype}: use float32, float64, int32, int64 or bool")
    dt = _TO_WIRE[value.dtype]
    if frame is not None:
        return frame.add(value, dt)
    shape = [int(d) for d in value.shape]
    too_big_for_json = dt == "INT64" and value.size and int(np.abs(value).max()) > 2**53
    if value.size > b64_threshold or too_big_for_json:
        little = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        return {"shape": shape, "datatype": dt, "b64": base64.b64encode(little.tobytes()).decode("ascii")}
    return {"shape": shape, "datatype": dt, "data": [_wire_scalar(x) for x in value.reshape(-1).tolist()]}


def _flatten(v, out):
    if isinstance(v, list):
        for x in v:
            _flatten(x, out)
    else:
        out.append(_NONFINITE.get(v, v) if isinstance(v, str) else v)


def decode_tensor(w, section=None):
    """wire tensor (flat or nested ``data``, ``b64``, or in a framed answer ``binary_data_offset``/``binary_data_size``
    into ``section``) -> numpy array of its shape and datatype. Binary tensors are views of ``section``, not copies."""
    dt = _FROM_WIRE[w["datatype"]]
    shape = tuple(w["shape"])
    if "binary_data_size" in w:
        little = np.dtype(dt).newbyteorder("<")
        size, offset = int(w["binary_data_size"]), int(w.get("binary_data_offset", 0))
        if section is None or offset + size > len(section) or size % little.itemsize:
            raise GradserveError("INVALID_RESPONSE", 200, f"binary tensor of {size} bytes at {offset} does not fit the answer")
        arr = np.frombuffer(section, dtype=little, count=size // little.itemsize, offset=offset)
        if not arr.dtype.isnative:
            arr = arr.astype(dt)
    elif "b64" in w and w["b64"] is not None:
        arr = np.frombuffer(base64.b64decode(w["b64"]), dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
    else:
        flat = []
        _flatten(w.get("data", []), flat)
        arr = np.array(flat, dtype=dt)
    return arr.reshape(shape)


def _decode_map(m, section=None):
    return {k: decode_tensor(v, section) for k, v in (m or {}).items()}


def _decode_map2(m, section=None):
    return {k: _decode_map(v, section) for k, v in (m or {}).items()}


# ------------------------------------------------------------------ client

class Client:
    """``binary``: "auto" (frame requests whose arrays hold more than ``binary_threshold_bytes``), "always" or
    "never". ``response_encoding`` is what unframed requests ask for; framed ones ask for a framed answer."""

    def __init__(self, url, api_key=None, timeout=60.0, b64_threshold=64, response_encoding="b64",
                 binary="auto", binary_threshold_bytes=4096):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.b64_threshold = b64_threshold
        self.response_encoding = response_encoding
        self.binary = binary
        self.binary_threshold_bytes = binary_threshold_bytes

    # -- plumbing

    def _enc_map(self, m, frame=None):
        return None if m is None else {k: encode_tensor(v, self.b64_threshold, frame) for k, v in m.items()}

    def _graph(self, graph, frame=None):
        if "constants" not in graph:
            return graph
        return {**graph, "constants": self._enc_map(graph["constants"], frame)}

    def _frame_for(self, maps):
        """A Frame when these tensor maps (inputs, cotangents, ..., graph constants) go framed, else None."""
        arrays = [v for m in maps if m for v in m.values() if isinstance(v, np.ndarray)]
        if self.binary in (False, "never") or not arrays:
            return None
        if self.binary in (True, "always") or sum(a.nbytes for a in arrays) > self.binary_threshold_bytes:
            return Frame()
        return None

    def request(self, method, path, body=None):
        """One HTTP exchange; returns the parsed JSON, raises GradserveError on any non-2xx answer."""
        return self._exchange(method, path, body)[0]

    def _exchange(self, method, path, body=None, frame=None):
        """One HTTP exchange: (JSON, binary section of a framed answer or None)."""
        data = None
        framed_answer = body is not None and body.get("encoding") == "binary"
        headers = {"Accept": f"{_FRAMED if framed_answer else 'application/json'}, application/problem+json"}
        if body is not None:
            body = {k: v for k, v in body.items() if v is not None}
            if frame is not None and len(frame):
                data, content = frame.build(body)
                headers.update(content)
            else:
                # allow_nan=False: a bare NaN token is invalid JSON and the service rejects it (INVALID_JSON).
                data = json.dumps(body, allow_nan=False).encode("utf-8")
                headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                head = res.headers.get(_HEADER_LENGTH)
                if head is None:
                    raw = res.read()
                    return (json.loads(raw) if raw else None), None
                return _read_frame(res, int(head))
        except urllib.error.HTTPError as e:
            raise _error_from(e) from None
        except urllib.error.URLError as e:
            raise GradserveError("NETWORK_ERROR", 0, f"{method} {path}: {e.reason}") from None

    def _source(self, graph, frame=None):
        """``{"graph": ...}``, or ``{"model": name}`` when ``graph`` is the name of a repository model."""
        if isinstance(graph, str):
            return {"model": graph}
        return {"graph": self._graph(graph, frame)}

    def _post_tensors(self, path, graph, inputs, encoding=None, maps=None, tensor_answer=True, **extra):
        """POST a request with tensors; returns (JSON, binary section or None). ``graph`` may be a model's name."""
        maps = maps or {}
        constants = None if isinstance(graph, str) else graph.get("constants")
        frame = self._frame_for([inputs, constants, *maps.values()])
        body = {**self._source(graph, frame), "inputs": self._enc_map(inputs or {}, frame), **extra}
        for k, m in maps.items():
            body[k] = self._enc_map(m, frame)
        if tensor_answer:
            body["encoding"] = encoding or ("binary" if frame is not None else self.response_encoding)
        return self._exchange("POST", path, body, frame)

    # -- v1

    def evaluate(self, graph, inputs, outputs=None, encoding=None):
        r, sec = self._post_tensors("/v1/evaluate", graph, inputs, encoding, outputs=outputs)
        return {"outputs": _decode_map(r["outputs"], sec)}

    def grad(self, graph, inputs, of, wrt, encoding=None, per_example=None):
        """Gradient of the one-element value ``of``. ``per_example={"axis": 0, "inputs": ["x", "labels"]}`` gives one
        gradient per slice of those inputs along the axis (a sliced input's gradient in its own shape, any other with
        a new leading axis of size N)."""
        r, sec = self._post_tensors("/v1/grad", graph, inputs, encoding, of=of, wrt=list(wrt),
                                    per_example=None if per_example is None else
                                    {"axis": int(per_example["axis"]), "inputs": list(per_example["inputs"])})
        return {"outputs": _decode_map(r["outputs"], sec), "gradients": _decode_map(r["gradients"], sec)}

    def vjp(self, graph, inputs, cotangents, wrt, encoding=None, batched=False):
        """``batched=True``: every cotangent has one extra leading axis of size B, and so does every gradient."""
        r, sec = self._post_tensors("/v1/vjp", graph, inputs, encoding, {"cotangents": cotangents}, wrt=list(wrt),
                                    batched=True if batched else None)
        return {"outputs": _decode_map(r["outputs"], sec), "gradients": _decode_map(r["gradients"], sec)}

    def jvp(self, graph, inputs, tangents, of=None, encoding=None, batched=False):
        """``batched=True``: every tangent has one extra leading axis of size B, and so does every output tangent."""
        r, sec = self._post_tensors("/v1/jvp", graph, inputs, encoding, {"tangents": tangents}, of=of,
                                    batched=True if batched else None)
        return {"outputs": _decode_map(r["outputs"], sec), "tangents": _decode_map(r["tangents"], sec)}

    def jacobian(self, graph, inputs, of, wrt, mode=None, encoding=None):
        r, sec = self._post_tensors("/v1/jacobian", graph, inputs, encoding, of=list(of), wrt=list(wrt), mode=mode)
        return {"outputs": _decode_map(r["outputs"], sec), "jacobians": _decode_map2(r["jacobians"], sec),
                "mode": r["mode"]}

    def hvp(self, graph, inputs, of, vectors, encoding=None, batched=False):
        """``batched=True``: every vector has one extra leading axis of size B, and so does every hvp (the gradients
        stay plain)."""
        r, sec = self._post_tensors("/v1/hvp", graph, inputs, encoding, {"vectors": vectors}, of=of,
                                    batched=True if batched else None)
        return {"outputs": _decode_map(r["outputs"], sec), "gradients": _decode_map(r["gradients"], sec),
                "hvp": _decode_map(r["hvp"], sec)}

    def hessian(self, graph, inputs, of, wrt, encoding=None):
        r, sec = self._post_tensors("/v1/hessian", graph, inputs, encoding, of=of, wrt=list(wrt))
        return {"outputs": _decode_map(r["outputs"], sec), "hessians": _decode_map2(r["hessians"], sec)}

    def gradcheck(self, graph, inputs, of, wrt, eps=None, atol=None, rtol=None):
        return self._post_tensors("/v1/gradcheck", graph, inputs, tensor_answer=False, of=of, wrt=list(wrt),
                                  eps=eps, atol=atol, rtol=rtol)[0]

    def transform(self, graph, transform, wrt, of=None):
        """Symbolic derivative graph (``transform`` is "grad", "vjp" or "jvp"); returns the new graph."""
        frame = None if isinstance(graph, str) else self._frame_for([graph.get("constants")])
        body = {**self._source(graph, frame), "transform": transform, "of": of, "wrt": list(wrt)}
        return self._exchange("POST", "/v1/transform", body, frame)[0]["graph"]

    def shapes(self, graph, inputs):
        """Shape inference and cost estimate; inputs may be arrays or just {"shape": [...], "datatype": ...}."""
        return self._post_tensors("/v1/shapes", graph, inputs, tensor_answer=False)[0]

    def import_onnx(self, onnx_bytes, weights="b64", dims=None):
        """POST /v1/import/onnx: ``{"graph", "parameters": {name: numpy array (or {shape, datatype} with
        weights="none")}, "notes"}``. ``dims`` fixes symbolic dimensions, e.g. ``{"batch": 8}``."""
        query = {"weights": weights}
        if dims:
            query["dims"] = ",".join(f"{k}:{v}" for k, v in dims.items())
        headers = {"Content-Type": "application/onnx", "Accept": "application/json, application/problem+json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.url}/v1/import/onnx?{urllib.parse.urlencode(query)}"
        req = urllib.request.Request(url, data=bytes(onnx_bytes), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                head = res.headers.get(_HEADER_LENGTH)
                r, sec = (json.loads(res.read()), None) if head is None else _read_frame(res, int(head))
        except urllib.error.HTTPError as e:
            raise _error_from(e) from None
        except urllib.error.URLError as e:
            raise GradserveError("NETWORK_ERROR", 0, f"POST /v1/import/onnx: {e.reason}") from None
        params = r.get("parameters", {})
        if weights != "none":
            params = _decode_map(params, sec)
        return {"graph": r["graph"], "parameters": params, "notes": r.get("notes", [])}

    def ops(self):
        return self.request("GET", "/v1/ops")

    # -- Open Inference Protocol

    def live(self):
        return self._health("/v2/health/live")

    def ready(self):
        return self._health("/v2/health/ready")

    def server_metadata(self):
        return self.request("GET", "/v2")

    def model_metadata(self, model):
        return self.request("GET", f"/v2/models/{urllib.parse.quote(model, safe='')}")

    def infer(self, model, inputs, outputs=None, parameters=None):
        """Open Inference Protocol inference on a model of the server's repository; returns {name: numpy array}.
        ``outputs`` items are names or {"name": ..., "parameters": {...}} (e.g. "grad:w" with {"of": "loss"})."""
        wire_inputs = []
        for name, v in inputs.items():
            arr = np.asarray(v, dtype=np.float32) if not isinstance(v, np.ndarray) else v
            # The protocol wants shape and datatype on every input and flat data.
            t = encode_tensor(arr, b64_threshold=float("inf"))
            wire_inputs.append({"name": name, "shape": t["shape"], "datatype": t["datatype"], "data": t["data"]})
        outs = None if outputs is None else [o if isinstance(o, dict) else {"name": o} for o in outputs]
        r = self.request("POST", f"/v2/models/{urllib.parse.quote(model, safe='')}/infer",
                         {"inputs": wire_inputs, "outputs": outs, "parameters": parameters})
        return {o["name"]: decode_tensor(o) for o in r["outputs"]}

    def _health(self, path):
        try:
            self.request("GET", path)
            return True
        except GradserveError as e:
            if e.status == 503:
                return False
            raise


def _read_frame(res, head):
    """A framed answer: read once into a writable buffer (numpy arrays then view it), split after ``head`` bytes."""
    length = res.headers.get("Content-Length")
    if length is not None:
        buf = bytearray(int(length))
        view, got = memoryview(buf), 0
        while got < len(buf):
            n = res.readinto(view[got:])
            if not n:
                raise GradserveError("INVALID_RESPONSE", res.status, f"the answer ended after {got} of {len(buf)} bytes")
            got += n
    else:
        buf = bytearray(res.read())
    if head > len(buf):
        raise GradserveError("INVALID_RESPONSE", res.status, f"{_HEADER_LENGTH} {head} is past the answer's {len(buf)} bytes")
    return json.loads(bytes(buf[:head])), memoryview(buf)[head:]


def _error_from(e):
    raw = e.read() or b""
    retry = e.headers.get("Retry-After") if e.headers else None
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return GradserveError(body["code"], body.get("status", e.code), body.get("detail", body.get("title", "")),
                              title=body.get("title"), errors=body.get("errors"), retry_after=retry, body=body)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return GradserveError("HTTP_ERROR", e.code, body["error"], retry_after=retry, body=body)
    return GradserveError("HTTP_ERROR", e.code, str(body)[:500] or f"HTTP {e.code}", retry_after=retry, body=body)
