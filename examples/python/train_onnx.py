"""Train a PyTorch model served from ONNX, with gradients from gradserve and a numpy optimizer.

1. Export a small PyTorch MLP (Linear, LayerNorm, tanh, Linear) with torch.onnx.export (or take --onnx FILE).
2. Put it in the server's model repository as <name>.onnx: the server imports it, its weights become parameters.
3. Fit it to a regression target: each step asks /v1/vjp for the gradient of the mean squared error with respect to
   every weight (the model by reference, "model": <name>, with the current weights sent as overrides), then takes an
   Adam step in numpy. The loss falls.

    python3 train_onnx.py --url http://127.0.0.1:8080 --repository /path/to/model-repository [--steps 60]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

try:
    import gradserve
except ImportError:  # run from a checkout without installing: the package is in clients/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import gradserve
from gradserve import Client


def export_mlp(path, n, d):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(d, 32), nn.LayerNorm(32), nn.Tanh(), nn.Linear(32, 1)).eval()
    torch.onnx.export(model, (torch.randn(n, d),), path, input_names=["x"], output_names=["y"], opset_version=17)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--repository", required=True, help="the server's --model-repository folder")
    ap.add_argument("--onnx", help="an exported model to train instead of exporting one (its one input is x)")
    ap.add_argument("--name", default="onnx_mlp")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=0.02)
    args = ap.parse_args()
    gs = Client(args.url)

    n, d = 64, 2
    with tempfile.TemporaryDirectory() as tmp:
        src = args.onnx or os.path.join(tmp, "model.onnx")
        if not args.onnx:
            export_mlp(src, n, d)
        with open(src, "rb") as f:
            onnx_bytes = f.read()
        imported = gs.import_onnx(onnx_bytes)
        # Into the repository, renamed into place so the server never reads half a file.
        part = os.path.join(args.repository, f".{args.name}.part")
        shutil.copyfile(src, part)
        os.replace(part, os.path.join(args.repository, f"{args.name}.onnx"))

    for _ in range(100):
        if gs._health(f"/v2/models/{args.name}/ready"):
            break
        time.sleep(0.05)
    meta = gs.model_metadata(args.name)
    (x_meta,) = meta["inputs"]
    shape = [n if s < 0 else s for s in x_meta["shape"]]
    params = {k: np.array(v, dtype=np.float32) for k, v in imported["parameters"].items()}
    print(f"model {args.name}: input x {shape}, {len(params)} parameters: {', '.join(sorted(params))}")

    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=shape).astype(np.float32)
    out_shape = meta["outputs"][0]["shape"]
    # A smooth target the model can fit: a fixed function of the inputs, one column per output unit.
    t = np.tanh(x @ rng.normal(size=(shape[-1], out_shape[-1])).astype(np.float32) * 0.5).astype(np.float32)

    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, args.steps + 1):
        r = gs.evaluate(args.name, {"x": x, **params})
        y = r["outputs"]["y"]
        loss = float(np.mean((y - t) ** 2))
        dy = (2.0 / y.size) * (y - t)
        g = gs.vjp(args.name, {"x": x, **params}, {"y": dy.astype(np.float32)}, wrt=sorted(params))["gradients"]
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v2[k] = b2 * v2[k] + (1 - b2) * g[k] ** 2
            mh = m[k] / (1 - b1 ** step)
            vh = v2[k] / (1 - b2 ** step)
            params[k] = (params[k] - args.lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        if step == 1 or step % 10 == 0 or step == args.steps:
            print(f"step {step:4d} loss {loss:.6f}")


if __name__ == "__main__":
    main()
