"""A small gradserve client: the Python standard library plus numpy.

numpy arrays go in and come out; tensors larger than ``b64_threshold`` elements travel as base64 of their
little-endian bytes (exact and compact), smaller ones as JSON. Service errors (application/problem+json) are raised
as ``GradserveError`` carrying ``code``, ``status``, ``detail`` and ``errors``.

    from gradserve_client import Client
    gs = Client("http://127.0.0.1:8080")
    r = gs.grad(graph, {"x": x, "w": w}, of="loss", wrt=["x", "w"])
    r["gradients"]["w"]          # a numpy array
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


def encode_tensor(value, b64_threshold=64):
    """numpy array -> wire tensor. Python numbers and (nested) lists stay wire shorthand, so their datatype is the
    one the graph declares; dicts are taken to be wire tensors already."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, np.ndarray):
        return _shorthand(value)
    if value.dtype not in _TO_WIRE:
        raise TypeError(f"unsupported numpy dtype {value.dtype}: use float32, float64, int32, int64 or bool")
    dt = _TO_WIRE[value.dtype]
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


def decode_tensor(w):
    """wire tensor (flat or nested ``data``, or ``b64``) -> numpy array of its shape and datatype."""
    dt = _FROM_WIRE[w["datatype"]]
    shape = tuple(w["shape"])
    if "b64" in w and w["b64"] is not None:
        arr = np.frombuffer(base64.b64decode(w["b64"]), dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
    else:
        flat = []
        _flatten(w.get("data", []), flat)
        arr = np.array(flat, dtype=dt)
    return arr.reshape(shape)


def _decode_map(m):
    return {k: decode_tensor(v) for k, v in (m or {}).items()}


def _decode_map2(m):
    return {k: _decode_map(v) for k, v in (m or {}).items()}


# ------------------------------------------------------------------ client

class Client:
    def __init__(self, url, api_key=None, timeout=60.0, b64_threshold=64, response_encoding="b64"):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.b64_threshold = b64_threshold
        self.response_encoding = response_encoding

    # -- plumbing

    def _enc_map(self, m):
        return None if m is None else {k: encode_tensor(v, self.b64_threshold) for k, v in m.items()}

    def _graph(self, graph):
        if "constants" not in graph:
            return graph
        return {**graph, "constants": self._enc_map(graph["constants"])}

    def request(self, method, path, body=None):
        """One HTTP exchange; returns the parsed JSON, raises GradserveError on any non-2xx answer."""
        data = None
        headers = {"Accept": "application/json, application/problem+json"}
        if body is not None:
            # allow_nan=False: a bare NaN token is invalid JSON and the service rejects it (INVALID_JSON).
            data = json.dumps({k: v for k, v in body.items() if v is not None}, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                raw = res.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raise _error_from(e) from None
        except urllib.error.URLError as e:
            raise GradserveError("NETWORK_ERROR", 0, f"{method} {path}: {e.reason}") from None

    def _post(self, path, graph, inputs, **extra):
        body = {"graph": self._graph(graph), "inputs": self._enc_map(inputs or {}), **extra}
        return self.request("POST", path, body)

    def _post_tensors(self, path, graph, inputs, encoding=None, **extra):
        return self._post(path, graph, inputs, encoding=encoding or self.response_encoding, **extra)

    # -- v1

    def evaluate(self, graph, inputs, outputs=None, encoding=None):
        r = self._post_tensors("/v1/evaluate", graph, inputs, encoding, outputs=outputs)
        return {"outputs": _decode_map(r["outputs"])}

    def grad(self, graph, inputs, of, wrt, encoding=None):
        r = self._post_tensors("/v1/grad", graph, inputs, encoding, of=of, wrt=list(wrt))
        return {"outputs": _decode_map(r["outputs"]), "gradients": _decode_map(r["gradients"])}

    def vjp(self, graph, inputs, cotangents, wrt, encoding=None):
        r = self._post_tensors("/v1/vjp", graph, inputs, encoding, cotangents=self._enc_map(cotangents), wrt=list(wrt))
        return {"outputs": _decode_map(r["outputs"]), "gradients": _decode_map(r["gradients"])}

    def jvp(self, graph, inputs, tangents, of=None, encoding=None):
        r = self._post_tensors("/v1/jvp", graph, inputs, encoding, tangents=self._enc_map(tangents), of=of)
        return {"outputs": _decode_map(r["outputs"]), "tangents": _decode_map(r["tangents"])}

    def jacobian(self, graph, inputs, of, wrt, mode=None, encoding=None):
        r = self._post_tensors("/v1/jacobian", graph, inputs, encoding, of=list(of), wrt=list(wrt), mode=mode)
        return {"outputs": _decode_map(r["outputs"]), "jacobians": _decode_map2(r["jacobians"]), "mode": r["mode"]}

    def hvp(self, graph, inputs, of, vectors, encoding=None):
        r = self._post_tensors("/v1/hvp", graph, inputs, encoding, of=of, vectors=self._enc_map(vectors))
        return {"outputs": _decode_map(r["outputs"]), "gradients": _decode_map(r["gradients"]), "hvp": _decode_map(r["hvp"])}

    def hessian(self, graph, inputs, of, wrt, encoding=None):
        r = self._post_tensors("/v1/hessian", graph, inputs, encoding, of=of, wrt=list(wrt))
        return {"outputs": _decode_map(r["outputs"]), "hessians": _decode_map2(r["hessians"])}

    def gradcheck(self, graph, inputs, of, wrt, eps=None, atol=None, rtol=None):
        return self._post("/v1/gradcheck", graph, inputs, of=of, wrt=list(wrt), eps=eps, atol=atol, rtol=rtol)

    def transform(self, graph, transform, wrt, of=None):
        """Symbolic derivative graph (``transform`` is "grad", "vjp" or "jvp"); returns the new graph."""
        body = {"graph": self._graph(graph), "transform": transform, "of": of, "wrt": list(wrt)}
        return self.request("POST", "/v1/transform", body)["graph"]

    def shapes(self, graph, inputs):
        """Shape inference and cost estimate; inputs may be arrays or just {"shape": [...], "datatype": ...}."""
        enc = {k: v if isinstance(v, dict) else encode_tensor(v, self.b64_threshold) for k, v in inputs.items()}
        return self.request("POST", "/v1/shapes", {"graph": self._graph(graph), "inputs": enc})

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
