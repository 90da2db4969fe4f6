"""PyTorch side of bench/onnx: `export DIR` writes the benchmark models (torch.onnx.export, opset 17) with their
inputs; `time DIR NAME REPS THREADS` prints the forward+backward time (gradients of loss = sum(y * c) with respect to
every parameter and the input) of the same module as JSON."""
import json
import os
import sys
import time

import torch
import torch.nn as nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.norm = nn.LayerNorm(512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 8 * 8, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512, dropout=0.0, batch_first=True, activation='gelu')

    def forward(self, x):
        return self.layer(x)


MODELS = {'mlp_layernorm': (Mlp, (64, 784)), 'cnn': (Cnn, (32, 3, 32, 32)), 'transformer_encoder': (Encoder, (8, 64, 128))}


def build(name):
    torch.manual_seed(7)
    cls, shape = MODELS[name]
    model = cls().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model, torch.randn(*shape)


def export(out):
    os.makedirs(out, exist_ok=True)
    for name in MODELS:
        model, x = build(name)
        torch.onnx.export(model, (x,), os.path.join(out, f'{name}.onnx'), input_names=['x'], output_names=['y'], opset_version=17)
        x.numpy().astype('float32').tofile(os.path.join(out, f'{name}.x.bin'))
        with open(os.path.join(out, f'{name}.json'), 'w') as f:
            json.dump({'shape': list(x.shape)}, f)


def timing(out, name, reps, threads):
    torch.set_num_threads(threads)
    model, _ = build(name)
    with open(os.path.join(out, f'{name}.json')) as f:
        shape = json.load(f)['shape']
    import numpy as np
    x = torch.from_numpy(np.fromfile(os.path.join(out, f'{name}.x.bin'), dtype=np.float32).reshape(shape)).requires_grad_(True)
    params = list(model.parameters())
    c = torch.randn(*model(x).shape)

    def step():
        y = model(x)
        torch.autograd.grad((y * c).sum(), [x, *params])

    for _ in range(3):
        step()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        ts.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({'ms': ts, 'threads': threads, 'version': torch.__version__}))


if __name__ == '__main__':
    if sys.argv[1] == 'export':
        export(sys.argv[2])
    else:
        timing(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
