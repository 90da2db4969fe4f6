"""The linear layer y = x·w (N=1, D=2, M=3) through gradserve, checked against numpy.

    /usr/bin/python3 examples/python/seed_example.py --url http://127.0.0.1:8080

Backpropagation never forms the Jacobian: given dL/dy, dL/dx = dL/dy·wᵀ and dL/dw = xᵀ·dL/dy. The script then asks
for the full Jacobian of y and the Hessian of 0.5·|y|² to show what those objects look like for the same layer.
Every line is ``name [shape] = values``; the script exits non-zero if gradserve and numpy disagree.
"""

import argparse
import json
import os
import sys

import numpy as np

try:
    import gradserve
except ImportError:  # run from a checkout without installing: the package is in clients/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import gradserve
from gradserve import Client, GradserveError

LINEAR = {
    "inputs": {"x": {"shape": [None, 2], "datatype": "FP32"}, "w": {"shape": [2, 3], "datatype": "FP32"}},
    "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}],
    "outputs": ["y"],
}

# 0.5·|y|²: its gradient w.r.t. x is y·wᵀ and its Hessian w.r.t. x is w·wᵀ (per row of x).
HALF_SQUARED = {
    "inputs": LINEAR["inputs"],
    "constants": {"half": {"shape": [], "datatype": "FP32", "data": [0.5]}},
    "nodes": [
        {"name": "y", "op": "matmul", "inputs": ["x", "w"]},
        {"name": "y2", "op": "square", "inputs": ["y"]},
        {"name": "s", "op": "sum", "inputs": ["y2"]},
        {"name": "loss", "op": "mul", "inputs": ["s", "half"]},
    ],
    "outputs": ["loss"],
}


def show(name, a):
    a = np.asarray(a)
    print(f"{name} {json.dumps(list(a.shape))} = {json.dumps(a.tolist())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    args = ap.parse_args()
    gs = Client(args.url)

    x = np.array([[1, 2]], dtype=np.float32)
    w = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    dy = np.array([[1, -1, 2]], dtype=np.float32)

    r = gs.vjp(LINEAR, {"x": x, "w": w}, cotangents={"y": dy}, wrt=["x", "w"])
    y, dx, dw = r["outputs"]["y"], r["gradients"]["x"], r["gradients"]["w"]
    show("y", y)
    show("dL/dx", dx)
    show("dL/dw", dw)
    checks = [np.allclose(y, x @ w), np.allclose(dx, dy @ w.T), np.allclose(dw, x.T @ dy)]

    j = gs.jacobian(LINEAR, {"x": x, "w": w}, of=["y"], wrt=["x"])
    jac = j["jacobians"]["y"]["x"]  # shape y.shape ++ x.shape = [1, 3, 1, 2]; J[0, m, 0, d] = w[d, m]
    show("dy/dx", jac)
    print(f"jacobian mode = {j['mode']}")
    checks.append(np.allclose(jac[0, :, 0, :], w.T))

    h = gs.hessian(HALF_SQUARED, {"x": x, "w": w}, of="loss", wrt=["x"])
    hess = h["hessians"]["x"]["x"]  # [1, 2, 1, 2] = w·wᵀ
    show("d2loss/dx2", hess)
    checks.append(np.allclose(hess[0, :, 0, :], w @ w.T))

    try:
        gs.grad(LINEAR, {"x": x, "w": w}, of="y", wrt=["x"])
    except GradserveError as e:  # y has 3 elements: grad needs a scalar
        print(f"error {e.code} {e.status}: {e.detail}")
        checks.append(e.code == "NOT_SCALAR")

    ok = all(checks)
    print("numpy agrees" if ok else f"MISMATCH with numpy: {checks}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
