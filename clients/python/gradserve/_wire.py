"""Tensors on the wire (API.md "Tensors" and "Binary framing"): numpy arrays to JSON ``data``, ``b64`` or blobs of a
framed request, and back. Framed answers are decoded as views of the bytes read, never copied."""

import base64
import json
import math

import numpy as np

from .errors import InvalidResponseError

FRAMED = "application/octet-stream"
HEADER_LENGTH = "Inference-Header-Content-Length"

TO_WIRE = {
    np.dtype("float32"): "FP32", np.dtype("float64"): "FP64", np.dtype("int32"): "INT32",
    np.dtype("int64"): "INT64", np.dtype("bool"): "BOOL",
}
_DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}
# little-endian dtypes by wire name (and the numpy spellings the service also accepts)
LITTLE = {k: np.dtype(v).newbyteorder("<") for k, v in _DTYPES.items()}
LITTLE.update({"float32": LITTLE["FP32"], "float64": LITTLE["FP64"], "int32": LITTLE["INT32"],
               "int64": LITTLE["INT64"], "bool": LITTLE["BOOL"]})
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAX_SAFE = 2 ** 53 - 1


def wire_dtype(dtype):
    """numpy dtype -> wire datatype (FP32, FP64, INT32, INT64, BOOL), whatever its byte order."""
    name = TO_WIRE.get(dtype)  # the usual case: a native dtype
    if name is not None:
        return name
    dt = np.dtype(dtype)
    name = TO_WIRE.get(dt.newbyteorder("=")) if dt.byteorder not in ("=", "|") else TO_WIRE.get(dt)
    if name is None:
        raise TypeError(f"unsupported numpy dtype {dt}: use float32, float64, int32, int64 or bool")
    return name


def as_array(value):
    """An ndarray for anything array-like that is not wire shorthand (a torch CPU tensor, a numpy scalar, ...), else
    None: Python numbers and (nested) lists stay shorthand, whose datatype is the one the graph declares."""
    if type(value) is np.ndarray or isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if hasattr(value, "__array__") and not isinstance(value, (list, tuple, dict, str, bytes)):
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensors
            value = value.detach().cpu()
        return np.asarray(value)
    return None


def little_endian(arr):
    """The array C-contiguous and little-endian: the array itself when it already is (no copy)."""
    dt = arr.dtype
    if dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian):
        return np.ascontiguousarray(arr, dtype=dt.newbyteorder("<"))
    return np.ascontiguousarray(arr)


def wire_scalar(v):
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


def shorthand(v):
    if isinstance(v, (list, tuple)):
        return [shorthand(x) for x in v]
    return wire_scalar(v)


class Frame:
    """The binary section of one request, filled while its JSON body is built."""

    __slots__ = ("blobs", "nbytes")

    def __init__(self):
        self.blobs = []  # [ref dict, memoryview of the little-endian bytes, element width]
        self.nbytes = 0

    def add(self, arr, datatype):
        little = little_endian(arr)
        view = memoryview(little).cast("B") if little.size else memoryview(b"")
        ref = {"shape": list(map(int, arr.shape)), "datatype": datatype, "binary_data_size": view.nbytes,
               "binary_data_offset": 0}
        self.blobs.append((ref, view, little.itemsize))
        self.nbytes += view.nbytes
        return ref

    def __len__(self):
        return len(self.blobs)

    def parts(self, body):
        """``(parts, header_length)``: the JSON header (padded with spaces to 8 bytes) then the blobs, widest elements
        first, so that every blob starts at a multiple of its element width and the service uses it in place. The
        blobs are views of the arrays' own memory: nothing is copied."""
        order = sorted(self.blobs, key=lambda b: -b[2])
        offset = 0
        for ref, view, _ in order:
            ref["binary_data_offset"] = offset
            offset += view.nbytes
        head = dumps(body)
        head += b" " * (-len(head) % 8)
        return [head] + [view for _, view, _ in order if view.nbytes], len(head)


def dumps(body):
    # allow_nan=False: a bare NaN token is not JSON and the service refuses it (INVALID_JSON)
    return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")


def encode(value, b64_threshold=64, frame=None):
    """A value for a tensor field: numpy arrays (or array-likes) become wire tensors (blobs of ``frame`` when the
    request is framed); dicts are taken to be wire tensors already; numbers and lists stay shorthand."""
    if isinstance(value, dict):
        return value
    arr = as_array(value)
    if arr is None:
        return shorthand(value)
    dt = wire_dtype(arr.dtype)
    if frame is not None:
        return frame.add(arr, dt)
    shape = list(map(int, arr.shape))
    big_int = dt == "INT64" and arr.size and int(np.abs(arr.astype(np.float64)).max()) >= _MAX_SAFE
    if arr.size > b64_threshold or big_int:
        return {"shape": shape, "datatype": dt, "b64": base64.b64encode(little_endian(arr).tobytes()).decode("ascii")}
    return {"shape": shape, "datatype": dt, "data": [wire_scalar(x) for x in arr.reshape(-1).tolist()]}


def encode_map(m, b64_threshold=64, frame=None):
    if m is None:
        return None
    return {k: encode(v, b64_threshold, frame) for k, v in m.items()}


def _flatten(v, out):
    if isinstance(v, list):
        for x in v:
            _flatten(x, out)
    else:
        out.append(_NONFINITE.get(v, v) if isinstance(v, str) else v)


def view(section, offset, size, little, shape):
    """An array over ``size`` bytes of ``section`` at ``offset``: a view when aligned, else one copy."""
    if size % little.itemsize:
        raise InvalidResponseError("INVALID_RESPONSE", 200, f"a binary tensor of {size} bytes is not a whole number of {little} elements")
    arr = np.frombuffer(section, dtype=little, count=size // little.itemsize, offset=offset)
    if not arr.flags.aligned or not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr.reshape(shape)


def decode(w, section=None):
    """A wire tensor (``data`` flat or nested, ``b64``, or ``binary_data_offset``/``binary_data_size`` into the
    binary ``section`` of a framed answer) -> a numpy array of its shape and datatype."""
    try:
        little = LITTLE[w["datatype"]]
        shape = tuple(w["shape"])
    except (KeyError, TypeError):
        raise InvalidResponseError("INVALID_RESPONSE", 200, f"not a wire tensor: {str(w)[:200]}") from None
    if "binary_data_size" in w:
        size, offset = int(w["binary_data_size"]), int(w.get("binary_data_offset", 0) or 0)
        if section is None or offset < 0 or offset + size > len(section):
            raise InvalidResponseError("INVALID_RESPONSE", 200, f"binary tensor of {size} bytes at {offset} does not fit the answer")
        return view(section, offset, size, little, shape)
    if w.get("b64") is not None:
        raw = bytearray(base64.b64decode(w["b64"]))  # writable, like every other answer
        return view(raw, 0, len(raw), little, shape) if raw else np.zeros(shape, little.newbyteorder("="))
    flat = []
    _flatten(w.get("data", []), flat)
    return np.array(flat, dtype=little.newbyteorder("=")).reshape(shape)


def decode_map(m, section=None):
    return {k: decode(v, section) for k, v in (m or {}).items()}


def decode_map2(m, section=None):
    return {k: decode_map(v, section) for k, v in (m or {}).items()}
