"""Where the tests find a gradserve server.

Under ``npm test`` (test/clients/python.test.ts) the servers are started by the test runner and given here through
the environment: ``GRADSERVE_URL`` (with the model repository ``GRADSERVE_MODEL_REPOSITORY``) and
``GRADSERVE_KEYED_URL`` (API key ``GRADSERVE_API_KEY``, a per-request memory budget of 4 KiB). Run alone
(``PYTHONPATH=clients/python python3 -m unittest discover -s clients/python/tests``), the suite starts both from the
repository's ``dist/cli.js`` (``npm run build`` first) and stops them at exit.
"""

import atexit
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
API_KEY = os.environ.get("GRADSERVE_API_KEY", "test-key-1")
_started = {}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args):
    port = _free_port()
    cmd = ["node", os.path.join(ROOT, "dist", "cli.js"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "silent", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            with urllib.request.urlopen(url + "/v2/health/live", timeout=1):
                return url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"could not start {' '.join(cmd)}")


def repository():
    if "GRADSERVE_MODEL_REPOSITORY" in os.environ:
        d = os.environ["GRADSERVE_MODEL_REPOSITORY"]
        if not os.path.exists(os.path.join(d, "linear.json")):
            write_models(d)  # the server picks new model files up when they are first used
        return d
    if "repo" not in _started:
        d = tempfile.mkdtemp(prefix="gradserve-py-models-")
        atexit.register(shutil.rmtree, d, True)
        write_models(d)
        _started["repo"] = d
    return _started["repo"]


def url():
    if "GRADSERVE_URL" in os.environ:
        return os.environ["GRADSERVE_URL"]
    if "url" not in _started:
        _started["url"] = _start(["--model-repository", repository()])
    return _started["url"]


def keyed_url():
    if "GRADSERVE_KEYED_URL" in os.environ:
        return os.environ["GRADSERVE_KEYED_URL"]
    if "keyed" not in _started:
        _started["keyed"] = _start(["--api-keys", API_KEY, "--request-memory", "4KiB"])
    return _started["keyed"]


# ---------------------------------------------------------------- models of the repository

#: "linear": y = x·w, loss = sum(y); its weight w [2, 3] (FP64) is stored in linear.safetensors.
LINEAR_W = np.arange(1.0, 7.0).reshape(2, 3)
LINEAR = {
    "inputs": {"x": {"shape": [None, 2], "datatype": "FP64"}, "w": {"shape": [2, 3], "datatype": "FP64"}},
    "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}, {"name": "loss", "op": "sum", "inputs": ["y"]}],
    "outputs": ["y"],
}


def write_safetensors(path, tensors):
    """The safetensors format: 8 bytes of little-endian header length, a JSON header, then the raw bytes."""
    names = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32",
             np.dtype("int64"): "I64", np.dtype("bool"): "BOOL"}
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        header[k] = {"dtype": names[a.dtype.newbyteorder("=")], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_models(d):
    with open(os.path.join(d, "linear.json"), "w") as f:
        json.dump(LINEAR, f)
    write_safetensors(os.path.join(d, "linear.safetensors"), {"w": LINEAR_W})
