#!/usr/bin/env python3
"""The Python client's own cost: gradserve.Client against a raw http.client loop sending the same bytes.

    npm run build:ts && /usr/bin/python3 bench/python/run.py [--mlp-reps 600] [--vjp-reps 24] [--phases mlp,vjp] [--url URL]

Two requests, each timed both ways on one keep-alive connection to one server (started from dist/cli.js on a free
port unless --url is given), in pairs of one raw and one client request, alternating which goes first, so that
drift and other load on the machine hit both alike:

- mlp: MLP 784-256-10 at batch 64, softmax cross entropy over INT32 labels, POST /v1/grad of w1 and w2 (the request
  of bench/http), binary framing both ways;
- vjp: the seed-scale VJP, x[64,4096] and w[4096,4096] FP32, a cotangent [64,4096], wrt x and w, binary both ways.

"raw" sends bytes prepared once (the client's own framing of the same arrays) with HTTPConnection.request and reads
the answer with HTTPResponse.read(), decoding nothing. "client" is ``Client.grad`` / ``Client.vjp`` from numpy
arrays to numpy arrays: it frames the arrays (JSON header, memoryviews of their bytes), sends, reads the answer into
one buffer and decodes every tensor as a view. Per request: median and p99 in ms, the client's overhead as the median
of the paired differences (client - raw), and the CPU time this process spends per request (thread time: the
client's own work plus the kernel's socket work, which other load moves far less than wall time). Targets: mlp overhead <= 0.3 ms; vjp client median within 10% of raw.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import gradserve  # noqa: E402
from gradserve import _wire as W  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    port = free_port()
    proc = subprocess.Popen(["node", os.path.join(ROOT, "dist", "cli.js"), "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "silent"], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(url + "/v2/health/ready", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not come up")


def mlp_case():
    B, D, H, C = 64, 784, 256, 10
    r = np.random.default_rng(11)
    graph = {
        "inputs": {"x": {"shape": [B, D], "datatype": "FP32"}, "w1": {"shape": [D, H], "datatype": "FP32"},
                   "w2": {"shape": [H, C], "datatype": "FP32"}, "labels": {"shape": [B], "datatype": "INT32"}},
        "nodes": [{"name": "h", "op": "matmul", "inputs": ["x", "w1"]}, {"name": "a", "op": "relu", "inputs": ["h"]},
                  {"name": "logits", "op": "matmul", "inputs": ["a", "w2"]},
                  {"name": "loss", "op": "softmax_cross_entropy", "inputs": ["logits", "labels"]}],
        "outputs": ["loss"],
    }
    inputs = {"x": r.standard_normal((B, D), np.float32), "w1": (r.standard_normal((D, H), np.float32) * 0.05),
              "w2": (r.standard_normal((H, C), np.float32) * 0.05), "labels": r.integers(0, C, B).astype(np.int32)}
    return "/v1/grad", graph, inputs, {}, {"of": "loss", "wrt": ["w1", "w2"]}


def vjp_case():
    N, D, M = 64, 4096, 4096
    r = np.random.default_rng(12)
    graph = {"inputs": {"x": {"shape": [N, D], "datatype": "FP32"}, "w": {"shape": [D, M], "datatype": "FP32"}},
             "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}], "outputs": ["y"]}
    inputs = {"x": r.standard_normal((N, D), np.float32), "w": r.standard_normal((D, M), np.float32) / 64}
    maps = {"cotangents": {"y": r.standard_normal((N, M), np.float32)}}
    return "/v1/vjp", graph, inputs, maps, {"wrt": ["x", "w"]}


def raw_request(path, graph, inputs, maps, fields):
    """The bytes the client sends for this request (its own framing), prepared once."""
    frame = W.Frame()
    body = {"graph": graph, "inputs": W.encode_map(inputs, 64, frame)}
    for k, m in maps.items():
        body[k] = W.encode_map(m, 64, frame)
    body.update(fields)
    body["encoding"] = "binary"
    parts, head = frame.parts(body)
    data = b"".join(bytes(p) for p in parts)
    headers = {"Content-Type": W.FRAMED, W.HEADER_LENGTH: str(head),
               "Accept": "application/octet-stream, application/problem+json"}
    return data, headers


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(url, case, reps, label):
    path, graph, inputs, maps, fields = case
    data, headers = raw_request(path, graph, inputs, maps, fields)
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))

    def raw():
        conn.request("POST", path, body=data, headers=headers)
        res = conn.getresponse()
        out = res.read()
        if res.status != 200 or res.getheader(W.HEADER_LENGTH) is None:
            raise RuntimeError(f"raw: {res.status} {out[:200]!r}")

    gs = gradserve.Client(url)
    call = getattr(gs, path.rsplit("/", 1)[1])
    if path == "/v1/grad":
        def client():
            return call(graph, inputs, **fields)
    else:
        def client():
            return call(graph, inputs, maps["cotangents"], **fields)

    # the same answer both ways, framed
    r = client()
    conn.request("POST", path, body=data, headers=headers)
    res = conn.getresponse()
    body = bytearray(res.read())
    n = int(res.getheader(W.HEADER_LENGTH))
    ref = W.decode_map(json.loads(bytes(body[:n]))["gradients"], memoryview(body)[n:])
    for k, v in ref.items():
        if not np.array_equal(v, r["gradients"][k]):
            raise RuntimeError(f"{label}: the client's gradient {k} differs from the raw answer's")

    times = {"raw": [], "client": []}
    cpu = {"raw": [], "client": []}
    raw()
    client()
    for i in range(reps):
        # pairs, in alternating order: both members of a pair see the same load on the machine
        for kind in (("raw", "client") if i % 2 == 0 else ("client", "raw")):
            fn = raw if kind == "raw" else client
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fn()
            times[kind].append((time.perf_counter() - t0) * 1e3)
            cpu[kind].append((time.thread_time() - c0) * 1e3)
    conn.close()
    gs.close()
    return times, cpu, len(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--mlp-reps", type=int, default=600)
    ap.add_argument("--vjp-reps", type=int, default=24)
    ap.add_argument("--phases", default="mlp,vjp")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON line too")
    a = ap.parse_args()
    proc = None
    url = a.url
    if url is None:
        proc, url = start_server()
    try:
        load = os.getloadavg()
        print(f"# Python client vs raw http.client, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, load {load[0]:.2f}")
        print()
        print("Round trip in ms (wall clock, medians and p99), and the CPU time this process spends per request (the")
        print("client's own work plus the kernel's socket work, which load on the machine moves far less than wall time).")
        print()
        print("| request | bytes sent | raw p50 | raw p99 | client p50 | client p99 | client - raw, paired p50 | client p50 / raw p50 | raw CPU p50 | client CPU p50 | client - raw CPU | target |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        results = {}
        for phase in a.phases.split(","):
            case = mlp_case() if phase == "mlp" else vjp_case()
            reps = a.mlp_reps if phase == "mlp" else a.vjp_reps
            times, cpu, nbytes = measure(url, case, reps, phase)
            raw50, raw99 = pct(times["raw"], 0.5), pct(times["raw"], 0.99)
            c50, c99 = pct(times["client"], 0.5), pct(times["client"], 0.99)
            over = pct([c - r for c, r in zip(times["client"], times["raw"])], 0.5)
            if phase == "mlp":
                target, met = "overhead <= 0.3 ms", over <= 0.3
            else:
                target, met = "within 10%", c50 <= 1.1 * raw50
            rc, cc = pct(cpu["raw"], 0.5), pct(cpu["client"], 0.5)
            results[phase] = {"raw_p50": raw50, "raw_p99": raw99, "client_p50": c50, "client_p99": c99,
                              "overhead_ms": over, "ratio": c50 / raw50, "raw_cpu_p50": rc, "client_cpu_p50": cc,
                              "met": met, "n": len(times["raw"])}
            name = "MLP batch 64 /v1/grad" if phase == "mlp" else "seed-scale /v1/vjp"
            print(f"| {name} (n={len(times['raw'])} each) | {nbytes / 1e6:.2f} MB | {raw50:.3f} | {raw99:.3f} | "
                  f"{c50:.3f} | {c99:.3f} | {over:+.3f} ms | {c50 / raw50:.3f}x | {rc:.3f} | {cc:.3f} | {cc - rc:+.3f} ms | "
                  f"{target}: {'met' if met else 'NOT met'} |")
        if a.json:
            print(json.dumps(results))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
