#!/usr/bin/env node
/**
 * ONNX benchmark, in one run:
 *  1. forward time of models exported by PyTorch (an MLP with LayerNorm, a transformer encoder layer; bench/onnx/peer.py
 *     exports them) imported into gradserve vs onnxruntime-node on the same file and inputs, at the same thread count
 *     (1 and 2: ORT's intra-op threads, gradserve's BLAS threads);
 *  2. forward+backward (the VJP with respect to the input and every weight) vs PyTorch at 1 and 2 threads, compared
 *     with the faster;
 *  3. the seed-scale linear layer (x[64, 4096] · w[4096, 4096]) over HTTP: request bytes and time of a VJP by reference
 *     (`"model"`, the weight stored once in the repository) vs with the weight in the request (binary framing).
 * Medians and p99 in ms, and ratios (above 1: gradserve is slower).
 *
 *   npm run build:ts && node bench/onnx/run.mjs [--reps 30] [--seed-only]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
const { importOnnx } = await import(join(root, 'dist', 'onnx', 'import.js'));
const { writeSafetensors } = await import(join(root, 'dist', 'tensor', 'safetensors.js'));
const { buildApp } = await import(join(root, 'dist', 'server', 'app.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const reps = arg('reps', 30);
const python = process.env.PYTHON ?? '/usr/bin/python3';

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
};
const stats = (xs) => ({ median: quantile(xs, 0.5), p99: quantile(xs, 0.99) });
const fmt = (v) => (Number.isFinite(v) ? v.toFixed(2) : String(v));
const show = (s) => `median ${fmt(s.median)} ms, p99 ${fmt(s.p99)} ms`;

async function times(fn) {
  for (let i = 0; i < 3; i++) await fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return ts;
}

const MODELS = ['mlp_layernorm', 'cnn', 'transformer_encoder'];
const child = process.argv.indexOf('--child');
if (child >= 0) {
  // One thread count (OPENBLAS_NUM_THREADS is read when the addon loads): forward vs ORT, and gradserve's fwd+bwd.
  const [dirArg, threadsArg] = process.argv.slice(child + 1);
  const threads = Number(threadsArg);
  let ort;
  try {
    ort = await import('onnxruntime-node');
  } catch {
    ort = undefined;
  }
  const out = {};
  for (const name of MODELS) {
    const bytes = readFileSync(join(dirArg, `${name}.onnx`));
    const shape = JSON.parse(readFileSync(join(dirArg, `${name}.json`), 'utf8')).shape;
    const xs = new Float32Array(readFileSync(join(dirArg, `${name}.x.bin`)).buffer.slice(0));
    const { graph, parameters } = importOnnx(bytes);
    const inputs = { ...parameters, x: tensor('FP32', shape, xs) };
    const y = (await engine.evaluate(graph, inputs)).outputs.y;
    const cot = { y: tensor('FP32', y.shape, Float32Array.from({ length: y.data.length }, (_, i) => Math.sin(i))) };
    const wrt = ['x', ...Object.keys(parameters)];
    const r = { shape, parameters: Object.keys(parameters).length, nodes: graph.nodes.length };
    r.forward = stats(await times(() => engine.evaluate(graph, inputs)));
    r.backward = stats(await times(() => engine.vjp(graph, inputs, cot, wrt)));
    if (ort !== undefined) {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
      const feeds = { x: new ort.Tensor('float32', xs, shape) };
      const ref = (await session.run(feeds)).y.data;
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - y.data[i]));
      r.ortMaxDiff = worst;
      r.ort = stats(await times(() => session.run(feeds)));
    }
    out[name] = r;
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'gradserve-bench-onnx-'));
const exp = spawnSync(python, [join(here, 'peer.py'), 'export', dir], { encoding: 'utf8' });
if (exp.status !== 0) {
  console.error(`exporting the models failed: ${exp.stderr}`);
  process.exit(1);
}
const byThreads = {};
// --seed-only: just the by-reference comparison (part 3)
const models = process.argv.includes('--seed-only') ? [] : MODELS;
for (const threads of models.length > 0 ? [1, 2] : []) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--reps', String(reps), '--child', dir, String(threads)], {
    encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), GRADSERVE_BLAS_ADAPTIVE: '0' },
  });
  if (r.status !== 0) {
    console.error(`gradserve at ${threads} thread(s) failed: ${r.stderr}`);
    process.exit(1);
  }
  byThreads[threads] = JSON.parse(r.stdout.trim().split('\n').pop());
}
for (const name of models) {
  const one = byThreads[1][name];
  console.log(`\n${name} (exported by PyTorch, opset 17): x [${one.shape.join(', ')}], ${one.parameters} parameters, ${one.nodes} gradserve nodes`);
  for (const threads of [1, 2]) {
    const r = byThreads[threads][name];
    const ort = r.ort === undefined ? 'onnxruntime-node not installed' : `onnxruntime ${show(r.ort)}; gradserve/ort = ${fmt(r.forward.median / r.ort.median)} (max |diff| ${r.ortMaxDiff.toExponential(1)})`;
    console.log(`  forward, ${threads} thread(s): gradserve ${show(r.forward)}; ${ort}`);
  }
  const torch = [1, 2].map((t) => {
    const r = spawnSync(python, [join(here, 'peer.py'), 'time', dir, name, String(reps), String(t)], { encoding: 'utf8' });
    return r.status === 0 ? { threads: t, ...stats(JSON.parse(r.stdout).ms) } : { threads: t, median: NaN, p99: NaN };
  });
  const best = torch.reduce((a, b) => (b.median < a.median ? b : a));
  const gs = [1, 2].map((t) => byThreads[t][name].backward).reduce((a, b) => (b.median < a.median ? b : a));
  console.log(`  forward+backward (VJP w.r.t. x and every weight): gradserve 1 thread ${show(byThreads[1][name].backward)}, 2 threads ${show(byThreads[2][name].backward)}`);
  console.log(`    PyTorch 1 thread ${show(torch[0])}, 2 threads ${show(torch[1])}; gradserve best / torch best = ${fmt(gs.median / best.median)}`);
}

// The seed-scale linear layer: the weight by reference vs in every request.
const D = 4096;
const N = 64;
const linear = {
  inputs: { x: { shape: [null, D], datatype: 'FP32' }, w: { shape: [D, D], datatype: 'FP32' } },
  nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }],
  outputs: ['y'],
};
const w = tensor('FP32', [D, D], Float32Array.from({ length: D * D }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5));
writeFileSync(join(dir, 'linear.json'), JSON.stringify(linear));
writeFileSync(join(dir, 'linear.safetensors'), writeSafetensors({ w }));
const app = await buildApp({ logger: false, modelRepository: dir });
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${app.server.address().port}/v1/vjp`;
const x = new Float32Array(N * D).map((_, i) => Math.cos(i));
const dy = new Float32Array(N * D).map((_, i) => Math.sin(i));
const frame = (json, blobs) => {
  const head = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([head, ...blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) } };
};
const t = (shape, n) => ({ shape, datatype: 'FP32', binary_data_size: n * 4 });
const byRef = frame({ model: 'linear', inputs: { x: t([N, D], N * D) }, cotangents: { y: t([N, D], N * D) }, wrt: ['x', 'w'], encoding: 'binary' }, [x, dy]);
const byValue = frame({ graph: linear, inputs: { x: t([N, D], N * D), w: t([D, D], D * D) }, cotangents: { y: t([N, D], N * D) }, wrt: ['x', 'w'], encoding: 'binary' }, [x, w.data, dy]);
const post = async (req) => {
  const r = await fetch(url, { method: 'POST', body: req.body, headers: req.headers });
  if (r.status !== 200) throw new Error(`${r.status}: ${await r.text()}`);
  await r.arrayBuffer();
};
// Interleaved rounds, so that load from elsewhere on the machine falls on both sides alike.
const few = Math.min(reps, 10);
for (let i = 0; i < 2; i++) {
  await post(byRef);
  await post(byValue);
}
const refTimes = [];
const valTimes = [];
for (let i = 0; i < few; i++) {
  let t0 = performance.now();
  await post(byRef);
  refTimes.push(performance.now() - t0);
  t0 = performance.now();
  await post(byValue);
  valTimes.push(performance.now() - t0);
}
const ref = stats(refTimes);
const val = stats(valTimes);
console.log(`\nseed-scale linear layer x[${N}, ${D}] · w[${D}, ${D}], /v1/vjp w.r.t. x and w, binary framing:`);
console.log(`  by reference ("model"): ${(byRef.body.length / 2 ** 20).toFixed(1)} MiB sent, ${show(ref)}`);
console.log(`  weight in the request:  ${(byValue.body.length / 2 ** 20).toFixed(1)} MiB sent, ${show(val)}; by reference saves ${fmt(100 * (1 - byRef.body.length / byValue.body.length))}% of the bytes, time ratio ${fmt(ref.median / val.median)}`);
await app.close();
rmSync(dir, { recursive: true, force: true });
