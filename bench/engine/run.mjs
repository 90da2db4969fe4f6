#!/usr/bin/env node
/**
 * Engine benchmark: MLP forward+backward with softmax cross entropy (gradients of all weights and biases), gradserve vs
 * PyTorch CPU (python subprocess, same thread count) and TensorFlow.js (cpu and wasm backends) in one run.
 *
 *   npm run build:ts && node bench/engine/run.mjs [--reps 20] [--threads 2]
 *
 * Shapes: x[64,784] -> 256 -> 10 and x[1024,784] -> 1024 -> 10, FP32. Prints ms/step medians and ratios (below 1 means
 * gradserve is faster), and the backward pass's peak live bytes (measured by the executor over distinct buffers, and
 * its free-at-last-use estimate) against inputs + saved activations + gradients.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine, tensor, GraphBuilder } = await import(join(root, 'dist', 'index.js'));
const { kernels } = await import(join(root, 'dist', 'kernels.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const reps = arg('reps', 20);
const threads = arg('threads', kernels.info().threads);
const python = process.env.PYTHON ?? '/usr/bin/python3';

let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArray = (n, scale) => Float32Array.from({ length: n }, () => rand() * 2 * scale);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeIt(fn) {
  for (let i = 0; i < 3; i++) await fn();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function mlpGraph(D, H, C) {
  const b = new GraphBuilder();
  const x = b.input('x', [null, D]);
  const labels = b.input('labels', [null], 'INT64');
  const h = x.matmul(b.input('w1', [D, H])).add(b.input('b1', [H])).relu();
  const z = h.matmul(b.input('w2', [H, C])).add(b.input('b2', [C]));
  return b.output(z.softmaxCrossEntropy(labels).as('loss')).build();
}

async function gradserve(B, D, H, C) {
  const graph = mlpGraph(D, H, C);
  const inputs = {
    x: tensor('FP32', [B, D], randArray(B * D, 1)),
    labels: tensor('INT64', [B], BigInt64Array.from({ length: B }, (_, i) => BigInt(i % C))),
    w1: tensor('FP32', [D, H], randArray(D * H, 1 / Math.sqrt(D))),
    b1: tensor('FP32', [H], new Float32Array(H)),
    w2: tensor('FP32', [H, C], randArray(H * C, 1 / Math.sqrt(H))),
    b2: tensor('FP32', [C], new Float32Array(C)),
  };
  const wrt = ['w1', 'b1', 'w2', 'b2'];
  const ms = await timeIt(() => engine.grad(graph, inputs, 'loss', wrt));
  let cost;
  let stats;
  await engine.grad(graph, inputs, 'loss', wrt, { onPlan: (c) => void (cost = c), onExecuted: (s) => void (stats = s) });
  // reference: inputs + every forward activation + the gradients (what a tape-based framework holds at its peak)
  const shapes = engine.shapes(graph, inputs);
  const bytes = (v) => v.shape.reduce((a, d) => a * d, 1) * (v.datatype === 'INT64' || v.datatype === 'FP64' ? 8 : 4);
  const inputBytes = Object.keys(inputs).reduce((s, k) => s + bytes(shapes.values[k]), 0);
  const actBytes = graph.nodes.reduce((s, n) => s + bytes(shapes.values[n.name]), 0);
  const gradBytes = wrt.reduce((s, k) => s + bytes(shapes.values[k]), 0);
  return { ms, peak: cost.peakBytes, measured: stats.peakBytes, ref: inputBytes + actBytes + gradBytes };
}

function torchPeer(B, D, H, C) {
  const r = spawnSync(python, [join(here, 'torch_peer.py'), B, D, H, C, reps, threads].map(String), { encoding: 'utf8' });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() };
  return JSON.parse(r.stdout);
}

async function tfjsPeer(tf, backend, B, D, H, C) {
  await tf.setBackend(backend);
  await tf.ready();
  const x = tf.tensor2d(randArray(B * D, 1), [B, D]);
  const labels = tf.oneHot(tf.tensor1d(Int32Array.from({ length: B }, (_, i) => i % C), 'int32'), C);
  const params = [
    tf.tensor2d(randArray(D * H, 1 / Math.sqrt(D)), [D, H]), tf.zeros([H]),
    tf.tensor2d(randArray(H * C, 1 / Math.sqrt(H)), [H, C]), tf.zeros([C]),
  ];
  const g = tf.grads((w1, b1, w2, b2) => tf.losses.softmaxCrossEntropy(labels, tf.relu(x.matMul(w1).add(b1)).matMul(w2).add(b2)));
  const ms = await timeIt(async () => {
    const gs = g(params);
    await Promise.all(gs.map((t) => t.data()));
    tf.dispose(gs);
  });
  tf.dispose([x, labels, ...params]);
  return { ms };
}

const info = kernels.info();
console.log(`gradserve kernels: ${info.blas}, simd ${info.simd}, ${info.threads} threads; reps ${reps}`);
let tf;
try {
  tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
} catch (e) {
  console.log(`TensorFlow.js unavailable: ${e.message}`);
}

const fmt = (v) => (typeof v === 'number' ? v.toFixed(2) : String(v));
const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
for (const [B, D, H, C] of [[64, 784, 256, 10], [1024, 784, 1024, 10]]) {
  const gs = await gradserve(B, D, H, C);
  const pt = torchPeer(B, D, H, C);
  const tcpu = tf ? await tfjsPeer(tf, 'cpu', B, D, H, C) : { ms: NaN };
  const twasm = tf ? await tfjsPeer(tf, 'wasm', B, D, H, C) : { ms: NaN };
  console.log(`\nMLP x[${B},${D}] -> ${H} -> ${C}, softmax cross entropy, fwd+bwd (ms/step, median)`);
  console.log(`  gradserve          ${fmt(gs.ms)}`);
  console.log(`  PyTorch ${pt.version ?? ''} CPU   ${pt.error ? `error: ${pt.error}` : `${fmt(pt.ms)}  (gradserve/torch = ${fmt(gs.ms / pt.ms)}, ${pt.threads} threads)`}`);
  console.log(`  TF.js cpu          ${fmt(tcpu.ms)}  (tfjs-cpu/gradserve = ${fmt(tcpu.ms / gs.ms)}x)`);
  console.log(`  TF.js wasm         ${fmt(twasm.ms)}  (tfjs-wasm/gradserve = ${fmt(twasm.ms / gs.ms)}x)`);
  console.log(`  backward peak live ${MiB(gs.measured)} measured (${MiB(gs.peak)} estimated) vs inputs+activations+gradients ${MiB(gs.ref)} = ${fmt(gs.measured / gs.ref)}x`);
}
