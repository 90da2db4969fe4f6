"""Train a tiny MLP with gradients computed by gradserve: one POST /v1/grad per step, Adam in numpy.

    /usr/bin/python3 examples/python/train_mlp.py --url http://127.0.0.1:8080                  # XOR, 2-8-1 tanh
    /usr/bin/python3 examples/python/train_mlp.py --url ... --dataset spiral --steps 400       # 3-arm spiral

The service holds no state: each step sends the graph, the batch and the current parameters, and gets back the
loss and its gradient with respect to every parameter. ``--check`` also backpropagates by hand in numpy on the first
step and prints the largest difference from gradserve's gradients.
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


def xor_data():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    t = np.array([[0], [1], [1], [0]], dtype=np.float32)
    return x, t


def spiral_data(rng, per_class=60, classes=3):
    """The classic interleaved spirals (CS231n): not linearly separable, a hidden layer is needed."""
    xs, ys = [], []
    for k in range(classes):
        r = np.linspace(0.05, 1.0, per_class)
        th = np.linspace(k * 4.0, (k + 1) * 4.0, per_class) + rng.normal(0, 0.15, per_class)
        xs.append(np.stack([r * np.sin(th), r * np.cos(th)], axis=1))
        ys.append(np.full(per_class, k))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)


def mlp_graph(n_out, loss_op, target_spec):
    """x -> tanh(x·w1 + b1) -> ·w2 + b2 -> loss. The batch dimension is left open (null)."""
    return {
        "inputs": {
            "x": {"shape": [None, 2], "datatype": "FP32"},
            "t": target_spec,
            "w1": {"datatype": "FP32"}, "b1": {"datatype": "FP32"},
            "w2": {"datatype": "FP32"}, "b2": {"datatype": "FP32"},
        },
        "nodes": [
            {"name": "h_mm", "op": "matmul", "inputs": ["x", "w1"]},
            {"name": "h_pre", "op": "add", "inputs": ["h_mm", "b1"]},
            {"name": "h", "op": "tanh", "inputs": ["h_pre"]},
            {"name": "o_mm", "op": "matmul", "inputs": ["h", "w2"]},
            {"name": "logits", "op": "add", "inputs": ["o_mm", "b2"]},
            {"name": "loss", "op": loss_op, "inputs": ["logits", "t"], "attrs": {"reduction": "mean"}},
        ],
        "outputs": ["loss", "logits"],
    }


def numpy_grads(p, x, t, spiral):
    """Hand-written backprop of the same network, to cross-check the service."""
    h = np.tanh(x @ p["w1"] + p["b1"])
    logits = h @ p["w2"] + p["b2"]
    n = x.shape[0]
    if spiral:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        dlogits = e / e.sum(axis=1, keepdims=True)
        dlogits[np.arange(n), t] -= 1
        dlogits /= n
    else:
        dlogits = (1 / (1 + np.exp(-logits)) - t) / logits.size
    dh = dlogits @ p["w2"].T * (1 - h * h)
    return {"w2": h.T @ dlogits, "b2": dlogits.sum(0), "w1": x.T @ dh, "b1": dh.sum(0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--dataset", choices=["xor", "spiral"], default="xor")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="compare the first step's gradients with numpy backprop")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    spiral = args.dataset == "spiral"
    if spiral:
        x, t = spiral_data(rng)
        n_out, hidden = 3, args.hidden or 32
        graph = mlp_graph(n_out, "softmax_cross_entropy", {"shape": [None], "datatype": "INT32"})
    else:
        x, t = xor_data()
        n_out, hidden = 1, args.hidden or 8
        graph = mlp_graph(n_out, "binary_cross_entropy_with_logits", {"shape": [None, 1], "datatype": "FP32"})

    def init(fan_in, shape):
        return (rng.normal(0, 1, shape) / np.sqrt(fan_in)).astype(np.float32)

    params = {
        "w1": init(2, (2, hidden)), "b1": np.zeros(hidden, np.float32),
        "w2": init(hidden, (hidden, n_out)), "b2": np.zeros(n_out, np.float32),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8

    gs = Client(args.url)
    print(f"dataset {args.dataset}: {x.shape[0]} points, MLP 2-{hidden}-{n_out}, {args.steps} steps of Adam (lr {args.lr})")
    first = last = None
    for step in range(args.steps):
        r = gs.grad(graph, {"x": x, "t": t, **params}, of="loss", wrt=list(params))
        loss = float(r["outputs"]["loss"])
        grads = r["gradients"]
        if step == 0 and args.check:
            ref = numpy_grads(params, x, t, spiral)
            diff = max(float(np.max(np.abs(grads[k] - ref[k]))) for k in params)
            print(f"max |gradserve - numpy| gradient difference at step 0: {diff:.3e}")
        first = loss if first is None else first
        last = loss
        if step % max(1, args.steps // 10) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss:.6f}")
        for k in params:
            g = grads[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            mhat = m[k] / (1 - b1 ** (step + 1))
            vhat = v[k] / (1 - b2 ** (step + 1))
            params[k] = (params[k] - args.lr * mhat / (np.sqrt(vhat) + eps)).astype(np.float32)

    logits = gs.evaluate(graph, {"x": x, "t": t, **params}, outputs=["logits"])["outputs"]["logits"]
    pred = logits.argmax(axis=1) if spiral else (logits[:, 0] > 0).astype(np.float32)
    truth = t if spiral else t[:, 0]
    acc = float(np.mean(pred == truth))
    print(f"loss {first:.6f} -> {last:.6f}")
    print(f"accuracy {acc:.4f}")
    return 0 if last < first else 1


if __name__ == "__main__":
    sys.exit(main())
