"""Batched derivatives: per-example gradient norms of an MLP, and a Hutchinson estimate of a Hessian trace.

    /usr/bin/python3 examples/python/batched_example.py --url http://127.0.0.1:8080

1. Per-example gradients (``/v1/grad`` with ``per_example``): one request returns the gradient of the loss for each
   example of the batch, as if that example were the whole batch, e.g. for clipping them one by one (DP-SGD) or to
   find the examples that pull hardest on the weights. Checked against numpy backprop of one example at a time.
2. Hutchinson's estimator (``/v1/hvp`` with ``batched``): tr(H) = E[vᵀ H v] for random vectors v of ±1 (Rademacher).
   One request pushes all K vectors through one vectorized pass; no Hessian is formed. Checked against the exact
   trace from ``/v1/hessian`` (this layer is small enough to form it).
"""

import argparse
import os
import sys

import numpy as np

try:
    import gradserve
except ImportError:  # run from a checkout without installing: the package is in clients/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import gradserve
from gradserve import Client

N, D, H, C = 32, 10, 16, 3

GRAPH = {
    "inputs": {
        "x": {"shape": [None, D], "datatype": "FP64"}, "labels": {"shape": [None], "datatype": "INT32"},
        "w1": {"shape": [D, H], "datatype": "FP64"}, "b1": {"shape": [H], "datatype": "FP64"},
        "w2": {"shape": [H, C], "datatype": "FP64"}, "b2": {"shape": [C], "datatype": "FP64"},
    },
    "nodes": [
        {"name": "h_mm", "op": "matmul", "inputs": ["x", "w1"]},
        {"name": "h_pre", "op": "add", "inputs": ["h_mm", "b1"]},
        {"name": "h", "op": "tanh", "inputs": ["h_pre"]},
        {"name": "o_mm", "op": "matmul", "inputs": ["h", "w2"]},
        {"name": "logits", "op": "add", "inputs": ["o_mm", "b2"]},
        {"name": "loss", "op": "softmax_cross_entropy", "inputs": ["logits", "labels"], "attrs": {"reduction": "mean"}},
    ],
    "outputs": ["loss"],
}
PARAMS = ["w1", "b1", "w2", "b2"]


def numpy_example_grads(p, x, label):
    """Backprop of one example by hand: the reference for the per-example gradients."""
    h = np.tanh(x @ p["w1"] + p["b1"])
    z = h @ p["w2"] + p["b2"]
    s = np.exp(z - z.max())
    s /= s.sum()
    dz = s.copy()
    dz[label] -= 1
    dh = (p["w2"] @ dz) * (1 - h * h)
    return {"w1": np.outer(x, dh), "b1": dh, "w2": np.outer(h, dz), "b2": dz}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--vectors", type=int, default=400, help="Rademacher vectors for the Hutchinson estimate")
    args = ap.parse_args()
    gs = Client(args.url)

    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, D))
    labels = rng.integers(0, C, size=N).astype(np.int32)
    p = {"w1": rng.normal(size=(D, H)) / np.sqrt(D), "b1": rng.normal(size=H) * 0.1,
         "w2": rng.normal(size=(H, C)) / np.sqrt(H), "b2": rng.normal(size=C) * 0.1}
    inputs = {"x": x, "labels": labels, **p}

    # 1. Per-example gradients: every parameter's gradient gets a leading axis of size N.
    r = gs.grad(GRAPH, inputs, of="loss", wrt=PARAMS, per_example={"axis": 0, "inputs": ["x", "labels"]})
    g = r["gradients"]
    print(f"batch loss {float(r['outputs']['loss']):.6f}; per-example gradient of w1 has shape {list(g['w1'].shape)}")
    norms = np.sqrt(sum((g[k].reshape(N, -1) ** 2).sum(axis=1) for k in PARAMS))
    print("per-example gradient norms:", " ".join(f"{v:.4f}" for v in norms))
    worst = int(np.argmax(norms))
    print(f"largest: example {worst} (label {labels[worst]}), norm {norms[worst]:.4f}; median {np.median(norms):.4f}")
    diff = 0.0
    for i in range(N):
        ref = numpy_example_grads(p, x[i], labels[i])
        diff = max(diff, *(float(np.abs(g[k][i] - ref[k]).max()) for k in PARAMS))
    print(f"per-example gradients vs numpy backprop: max |difference| {diff:.3e}")
    # The batch gradient of a mean loss is the mean of the per-example gradients.
    whole = gs.grad(GRAPH, inputs, of="loss", wrt=PARAMS)["gradients"]
    mean_diff = max(float(np.abs(g[k].mean(axis=0) - whole[k]).max()) for k in PARAMS)
    print(f"mean of per-example gradients vs the batch gradient: max |difference| {mean_diff:.3e}")

    # 2. Hutchinson: tr(d²loss/dw1²) = E[vᵀ H v], v with independent ±1 entries; K vectors in one batched request.
    K = args.vectors
    v = rng.choice([-1.0, 1.0], size=(K, D, H))
    hv = gs.hvp(GRAPH, inputs, of="loss", vectors={"w1": v}, batched=True)["hvp"]["w1"]   # [K, D, H]
    samples = (v * hv).reshape(K, -1).sum(axis=1)                                         # vᵀ H v per vector
    estimate, stderr = samples.mean(), samples.std(ddof=1) / np.sqrt(K)
    hess = gs.hessian(GRAPH, inputs, of="loss", wrt=["w1"])["hessians"]["w1"]["w1"].reshape(D * H, D * H)
    exact = float(np.trace(hess))
    print(f"Hutchinson trace of the w1 Hessian with {K} vectors: {estimate:.6f} ± {stderr:.6f}; exact {exact:.6f}")
    flat = v.reshape(K, -1)
    dense = np.einsum("ki,ij,kj->k", flat, hess, flat)
    print(f"batched hvp vs the dense Hessian: max |vᵀHv difference| {np.abs(dense - samples).max():.3e}")


if __name__ == "__main__":
    main()
