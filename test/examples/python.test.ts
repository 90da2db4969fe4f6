/**
 * The Python examples (standard library + numpy, through the gradserve package in clients/python) against a live
 * server. Python is a required toolchain: when /usr/bin/python3 or its numpy is missing these tests fail and say so,
 * they do not skip. The package itself (every endpoint, encodings, errors, retries) is tested by
 * test/clients/python.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTensorLines, run, startServer, type LiveServer } from './live-server.js';
import { expectClose, expectSeedTensors, seedReference } from './reference.js';

const PY = process.env.GRADSERVE_PYTHON ?? '/usr/bin/python3';
const DIR = join(import.meta.dirname, '../../examples/python');
// The examples import the package from clients/python (no pip install); no __pycache__ litter in the source tree.
const ENV = { PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: join(import.meta.dirname, '../../clients/python') };

let server: LiveServer;
let models: string;
beforeAll(async () => {
  models = mkdtempSync(join(tmpdir(), 'gradserve-py-models-'));
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
});
