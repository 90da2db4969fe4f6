/**
 * The Python examples (standard library + numpy) against a live server. Python is a required toolchain: when
 * /usr/bin/python3 or its numpy is missing these tests fail and say so, they do not skip.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTensorLines, run, startServer, type LiveServer } from './live-server.js';
import { expectClose, expectSeedTensors, matmul, SEED, seedReference, transpose } from './reference.js';

const PY = process.env.GRADSERVE_PYTHON ?? '/usr/bin/python3';
const DIR = join(import.meta.dirname, '../../examples/python');
// No __pycache__ litter in the source tree.
const ENV = { PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: DIR };

let server: LiveServer;
let models: string;
beforeAll(async () => {
  models = mkdtempSync(join(tmpdir(), 'gradserve-py-models-'));
  writeFileSync(join(models, 'linear.json'), JSON.stringify({
    inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
    nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }, { name: 'loss', op: 'sum', inputs: ['y'] }],
    outputs: ['y'],
  }));
  server = await startServer({ modelRepository: models });
});
afterAll(async () => {
  await server?.close();
  rmSync(models, { recursive: true, force: true });
});

function py(args: string[]) {
  return run(PY, args, { cwd: DIR, env: ENV, timeoutMs: 180_000 });
}

describe(`Python examples (${PY} with numpy)`, () => {
  it('the toolchain is present: python3 with numpy', async () => {
    const r = await py(['-c', 'import numpy; print(numpy.__version__)']);
    expect(r.code, `python3 with numpy is required for the examples: ${r.stderr}`).toBe(0);
  });

  it('seed_example.py: y = x·w, dL/dx = dy·wᵀ, dL/dw = xᵀ·dy, the Jacobian and the Hessian by value', async () => {
    const r = await py(['seed_example.py', '--url', server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const t = parseTensorLines(r.stdout);
    expectSeedTensors(t);
    const ref = seedReference();
    expect(t.get('dy/dx')?.shape).toEqual([1, 3, 1, 2]);
    expectClose(t.get('dy/dx')!.values, ref.jacYX);
    expect(t.get('d2loss/dx2')?.shape).toEqual([1, 2, 1, 2]);
    expectClose(t.get('d2loss/dx2')!.values, ref.hessHalfSquared);
    expect(r.stdout).toMatch(/^error NOT_SCALAR 422: .*y/m);
    expect(r.stdout).toContain('numpy agrees');
  });

  it('batched_example.py: per-example gradient norms match numpy backprop; Hutchinson estimates the exact Hessian trace', async () => {
    const r = await py(['batched_example.py', '--url', server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('per-example gradient of w1 has shape [32, 10, 16]');
    const norms = /^per-example gradient norms: (.*)$/m.exec(r.stdout)![1]!.split(' ').map(Number);
    expect(norms.length).toBe(32);
    for (const n of norms) expect(n).toBeGreaterThan(0);
    expect(Number(/vs numpy backprop: max \|difference\| ([\d.eE+-]+)/.exec(r.stdout)![1])).toBeLessThan(1e-12);
    expect(Number(/vs the batch gradient: max \|difference\| ([\d.eE+-]+)/.exec(r.stdout)![1])).toBeLessThan(1e-12);
    const m = /with (\d+) vectors: ([\d.eE+-]+) ± ([\d.eE+-]+); exact ([\d.eE+-]+)/.exec(r.stdout)!;
    const [estimate, stderr, exact] = [Number(m[2]), Number(m[3]), Number(m[4])];
    expect(Number(m[1])).toBe(400);
    expect(stderr).toBeGreaterThan(0);
    // seeded, so deterministic; four standard errors is the statistical promise
    expect(Math.abs(estimate - exact)).toBeLessThan(4 * stderr);
    expect(Number(/vs the dense Hessian: max \|vᵀHv difference\| ([\d.eE+-]+)/.exec(r.stdout)![1])).toBeLessThan(1e-10);
  });

  function losses(out: string): number[] {
    return [...out.matchAll(/^step\s+\d+\s+loss ([\d.eE+-]+)$/gm)].map((m) => Number(m[1]));
  }

  it('train_onnx.py: a PyTorch model exported to ONNX, served from the repository by reference, trained with gradserve gradients', async () => {
    // torch exports the model when it is installed; without it the example trains the committed export
    const hasTorch = (await py(['-c', 'import torch'])).code === 0;
    const args = ['train_onnx.py', '--url', server.url, '--repository', models, '--steps', '30'];
    if (!hasTorch) args.push('--onnx', join(import.meta.dirname, '../fixtures/onnx/mlp_layernorm.onnx'));
    const r = await py(args);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^model onnx_mlp: input x \[\d+, \d+\], 6 parameters/m);
    const l = losses(r.stdout);
    expect(l.length).toBeGreaterThan(2);
    expect(l.at(-1)!).toBeLessThan(l[0]! * 0.2);
  });

  it('train_mlp.py (XOR): gradients match numpy backprop, the loss falls steadily and all four points are learned', async () => {
    const r = await py(['train_mlp.py', '--url', server.url, '--dataset', 'xor', '--steps', '300', '--check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const diff = Number(/gradient difference at step 0: ([\d.eE+-]+)/.exec(r.stdout)?.[1]);
    expect(diff).toBeLessThan(1e-5);
    const l = losses(r.stdout);
    expect(l.length).toBeGreaterThanOrEqual(10);
    expect(l[0]).toBeGreaterThan(0.5); // ~ln 2 for an untrained logit
    expect(l.at(-1)!).toBeLessThan(0.05);
    // "falls": each printed checkpoint is below the one before it.
    for (let i = 1; i < l.length; i++) expect(l[i], `checkpoint ${i}: ${l}`).toBeLessThan(l[i - 1]!);
    expect(Number(/^accuracy ([\d.]+)$/m.exec(r.stdout)?.[1])).toBe(1);
  });

  it('train_mlp.py (3-arm spiral, softmax cross-entropy with INT32 labels): the loss falls and accuracy beats chance', async () => {
    const r = await py(['train_mlp.py', '--url', server.url, '--dataset', 'spiral', '--steps', '200', '--lr', '0.02', '--check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const diff = Number(/gradient difference at step 0: ([\d.eE+-]+)/.exec(r.stdout)?.[1]);
    expect(diff).toBeLessThan(1e-5);
    const l = losses(r.stdout);
    expect(l[0]).toBeGreaterThan(0.9); // ~ln 3 untrained
    expect(l.at(-1)!).toBeLessThan(0.25 * l[0]!);
    expect(Number(/^accuracy ([\d.]+)$/m.exec(r.stdout)?.[1])).toBeGreaterThan(0.9);
  });

  it('gradserve_client.py: b64 and JSON both ways, non-finite values, typed errors with the problem+json detail', async () => {
    const script = `
import json, sys, numpy as np
from gradserve_client import Client, GradserveError
url = sys.argv[1]
g = {"inputs": {"a": {"datatype": "FP64"}}, "nodes": [{"name": "b", "op": "mul", "inputs": ["a", "a"]}], "outputs": ["b"]}
big = np.linspace(-3, 3, 1000).reshape(10, 100)
big[0, 0] = np.nan; big[0, 1] = np.inf
out = {}
for enc, thr in (("b64", 64), ("json", 10**9)):
    gs = Client(url, b64_threshold=thr, response_encoding=enc, binary="never")
    b = gs.evaluate(g, {"a": big})["outputs"]["b"]
    ref = big * big
    out[enc] = {"dtype": str(b.dtype), "shape": list(b.shape), "exact": bool(np.array_equal(b, ref, equal_nan=True))}
gs = Client(url)
try:
    gs.evaluate({"nodes": [{"name": "y", "op": "nosuchop", "inputs": []}], "outputs": ["y"]}, {})
except GradserveError as e:
    out["error"] = {"code": e.code, "status": e.status, "detail": e.detail, "paths": [x["path"] for x in e.errors]}
print(json.dumps(out))
`;
    const r = await py(['-c', script, server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    for (const enc of ['b64', 'json']) expect(out[enc], enc).toEqual({ dtype: 'float64', shape: [10, 100], exact: true });
    expect(out.error.code).toBe('UNKNOWN_OP');
    expect(out.error.status).toBe(422);
    expect(out.error.detail).toContain('nosuchop');
  });

  it('gradserve_client.py: binary framing above 4 KiB by default, every datatype bit-exact, answers as views', async () => {
    const script = `
import json, sys, urllib.request, numpy as np
from gradserve_client import Client
url = sys.argv[1]
seen = []
real = urllib.request.urlopen
def spy(req, timeout=None):
    res = real(req, timeout=timeout)
    seen.append([req.get_header("Content-type"), res.headers.get("Content-Type").split(";")[0]])
    return res
urllib.request.urlopen = spy
ident = {"inputs": {k: {"datatype": d} for k, d in (("f", "FP32"), ("d", "FP64"), ("i", "INT32"), ("l", "INT64"), ("b", "BOOL"), ("e", "FP32"))},
         "nodes": [{"name": "r_" + k, "op": "identity", "inputs": [k]} for k in "fdilbe"], "outputs": ["r_" + k for k in "fdilbe"]}
f = np.linspace(-1, 1, 2000, dtype=np.float32); f[3] = np.nan; f[4] = -np.inf
ins = {"f": f.reshape(40, 50), "d": np.array([np.pi, -0.0, np.inf]), "i": np.array([2**31 - 1, -2**31], dtype=np.int32),
       "l": np.array([2**62 + 1, -2**63], dtype=np.int64), "b": np.array([[True, False], [False, True]]), "e": np.zeros((0, 3), np.float32)}
out = {}
gs = Client(url)
r = gs.evaluate(ident, ins)["outputs"]
out["exact"] = {k: bool(np.array_equal(r["r_" + k], v, equal_nan=v.dtype.kind == "f")) and r["r_" + k].dtype == v.dtype and r["r_" + k].shape == v.shape for k, v in ins.items()}
out["views"] = bool(r["r_f"].base is not None and r["r_f"].flags.writeable)
small = gs.evaluate(ident, {k: v[:1] for k, v in ins.items()})["outputs"]
out["small_exact"] = all(np.array_equal(small["r_" + k], v[:1], equal_nan=v.dtype.kind == "f") for k, v in ins.items())
Client(url, binary="always").evaluate(ident, {k: v[:1] for k, v in ins.items()})
Client(url, binary="never").evaluate(ident, ins)
g = {"inputs": {"x": {"shape": [None, 64], "datatype": "FP64"}, "w": {"shape": [64, 64], "datatype": "FP64"}},
     "constants": {"c": np.full(600, 0.5)},
     "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}, {"name": "s", "op": "sum", "inputs": ["c"]}, {"name": "z", "op": "mul", "inputs": ["y", "s"]}],
     "outputs": ["z"]}
x = np.cos(np.arange(128.0)).reshape(2, 64); w = np.sin(np.arange(4096.0)).reshape(64, 64) / 64; dz = np.ones((2, 64))
a = gs.vjp(g, {"x": x, "w": w}, cotangents={"z": dz}, wrt=["x", "w"])["gradients"]
b = Client(url, binary="never").vjp(g, {"x": x, "w": w}, cotangents={"z": dz}, wrt=["x", "w"])["gradients"]
out["vjp_same"] = bool(np.array_equal(a["x"], b["x"]) and np.array_equal(a["w"], b["w"]) and np.allclose(a["x"], 300 * dz @ w.T))
tg = gs.transform(g, "vjp", of=["z"], wrt=["w"])
out["transform_b64"] = "b64" in tg["constants"]["c"]
out["seen"] = seen
print(json.dumps(out))
`;
    const r = await py(['-c', script, server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(out.exact).toEqual({ f: true, d: true, i: true, l: true, b: true, e: true });
    expect(out.views).toBe(true);
    expect(out.small_exact).toBe(true);
    expect(out.vjp_same).toBe(true);
    expect(out.transform_b64).toBe(true);
    const J = 'application/json';
    const B = 'application/octet-stream';
    // default large: framed both ways; small: JSON; always; never; vjp default (framed) and never; transform (framed request, JSON answer)
    expect(out.seen).toEqual([[B, B], [J, J], [B, B], [J, J], [B, B], [J, J], [B, J]]);
  });

  it('gradserve_client.py: jvp, hvp, gradcheck, transform, shapes, ops, health and OIP infer, by value', async () => {
    const script = `
import json, sys, numpy as np
from gradserve_client import Client
gs = Client(sys.argv[1])
g = {"inputs": {"x": {"shape": [None, 2], "datatype": "FP64"}, "w": {"shape": [2, 3], "datatype": "FP64"}},
     "constants": {"half": np.array(0.5)},
     "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}, {"name": "y2", "op": "square", "inputs": ["y"]},
               {"name": "s", "op": "sum", "inputs": ["y2"]}, {"name": "loss", "op": "mul", "inputs": ["s", "half"]}],
     "outputs": ["y", "loss"]}
x = np.array([[1.0, 2.0]]); w = np.arange(1.0, 7.0).reshape(2, 3); v = np.array([[1.0, -1.0]])
out = {}
out["jvp"] = gs.jvp(g, {"x": x, "w": w}, tangents={"x": v}, of=["y"])["tangents"]["y"].tolist()
h = gs.hvp(g, {"x": x, "w": w}, of="loss", vectors={"x": v})
out["hvp"] = h["hvp"]["x"].tolist(); out["grad"] = h["gradients"]["x"].tolist()
out["gradcheck"] = gs.gradcheck(g, {"x": x, "w": w}, of="loss", wrt=["x", "w"])["ok"]
tg = gs.transform(g, "grad", wrt=["w"], of="loss")
out["transform"] = gs.evaluate(tg, {"x": x, "w": w}, outputs=["grad:w"])["outputs"]["grad:w"].tolist()
sh = gs.shapes(g, {"x": {"shape": [5, 2], "datatype": "FP64"}, "w": {"shape": [2, 3], "datatype": "FP64"}})
out["shape_y"] = sh["values"]["y"]; out["flops"] = sh["flops"]
out["ops"] = sorted(o["name"] for o in gs.ops()["ops"] if o["name"] in ("matmul", "tanh"))
out["live"] = gs.live(); out["ready"] = gs.ready()
out["extensions"] = gs.server_metadata()["extensions"]
out["model_inputs"] = sorted(i["name"] for i in gs.model_metadata("linear")["inputs"])
inf = gs.infer("linear", {"x": x.astype(np.float32), "w": w.astype(np.float32)}, outputs=["y", {"name": "grad:w", "parameters": {"of": "loss"}}])
out["infer_y"] = inf["y"].tolist(); out["infer_grad_w"] = inf["grad:w"].tolist(); out["infer_dtype"] = str(inf["y"].dtype)
print(json.dumps(out))
`;
    const r = await py(['-c', script, server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const ref = seedReference();
    const y = ref.y;
    expectClose(out.jvp.flat(), matmul([1, -1], SEED.w, 1, 2, 3));
    expectClose(out.hvp.flat(), matmul([1, -1], ref.hessHalfSquared, 1, 2, 2));
    expectClose(out.grad.flat(), matmul(y, transpose(SEED.w, 2, 3), 1, 3, 2));
    expect(out.gradcheck).toBe(true);
    // d(½|x·w|²)/dw = xᵀ·y
    expectClose(out.transform.flat(), matmul(SEED.x, y, 2, 1, 3));
    expect(out.shape_y).toEqual({ shape: [5, 3], datatype: 'FP64' });
    expect(out.flops).toBeGreaterThan(0);
    expect(out.ops).toEqual(['matmul', 'tanh']);
    expect(out.live).toBe(true);
    expect(out.ready).toBe(true);
    expect(out.extensions).toContain('binary_tensor_data');
    expect(out.model_inputs).toEqual(['w', 'x']);
    expect(out.infer_dtype).toBe('float32');
    expectClose(out.infer_y.flat(), ref.y);
    expectClose(out.infer_grad_w.flat(), seedReference([1, 1, 1]).dw);
  });
});
