"""Exported models and PyTorch gradient fixtures for the ONNX importer (test/onnx/models.test.ts, bench/onnx).

Run with /usr/bin/python3 (torch 1.13): writes test/fixtures/onnx/<model>.onnx (torch.onnx.export, opset 13 and 17)
and <model>.json with the inputs, the outputs and the gradients of loss = sum(output * cotangent) with respect to the
input and every parameter, computed by torch.autograd. Models: an MLP with LayerNorm (Gemm, LayerNormalization at
opset 17 or its decomposition at opset 13), a small CNN (Conv, BatchNorm folded by the exporter, MaxPool, Flatten,
Gemm) and a transformer encoder layer (MatMul, Softmax, Reshape/Transpose driven by Shape arithmetic, LayerNorm,
GELU as Erf).

    /usr/bin/python3 scripts/fixtures_onnx.py
"""
import json
import os

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx')
SEED = 20261207


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True, activation='gelu')

    def forward(self, x):
        return self.layer(x)


MODELS = [
    ('mlp_layernorm', Mlp, (4, 16), 17),
    ('mlp_layernorm_opset13', Mlp, (4, 16), 13),
    ('cnn', Cnn, (2, 3, 8, 8), 13),
    ('transformer_encoder', Encoder, (2, 5, 16), 13),
]


def flat(t):
    return t.detach().double().reshape(-1).tolist()


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cls, shape, opset in MODELS:
        torch.manual_seed(SEED)
        model = cls().eval()
        # No two parameters equal (LayerNorm's ones and zeros): the exporter would share one initializer between them.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        x = torch.randn(*shape)
        path = os.path.join(OUT, f'{name}.onnx')
        torch.onnx.export(model, (x,), path, input_names=['x'], output_names=['y'], opset_version=opset, do_constant_folding=True)
        params = dict(model.named_parameters())
        xg = x.clone().requires_grad_(True)
        y = model(xg)
        cot = torch.randn(*y.shape)
        loss = (y * cot).sum()
        grads = torch.autograd.grad(loss, [xg, *params.values()])
        fixture = {
            'model': f'{name}.onnx',
            'opset': opset,
            'x': {'shape': list(x.shape), 'data': flat(x)},
            'y': {'shape': list(y.shape), 'data': flat(y)},
            'cotangent': {'shape': list(cot.shape), 'data': flat(cot)},
            'grad_x': flat(grads[0]),
            # by PyTorch parameter name; the exported initializers carry the same names where the exporter keeps them
            'grad_params': {k: {'shape': list(p.shape), 'data': flat(g)} for (k, p), g in zip(params.items(), grads[1:])},
        }
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            json.dump(fixture, f)
        print(name, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
