#!/usr/bin/env node
/**
 * Batched derivatives, MLP 784-256-10 (relu, softmax cross entropy with INT32 labels, biases), batch 64, FP32:
 *
 *  1. 64 VJPs (cotangents on the logits) over HTTP: one batched request (`"batched": true`, cotangents [64, 64, 10])
 *     vs 64 single requests, sequential and 8 in flight; the TypeScript client, binary framing both ways. Gradients
 *     with respect to the input x (sensitivities: 12.3 MiB batched), then every parameter (49.7 MiB batched, where
 *     the 64 first-layer weight gradients, not the requests, are most of the work). Target: batched >= 8x faster
 *     than the faster of the two.
 *  2. Per-example gradients (`per_example`, all 64 examples) in-process vs PyTorch in-process: looping over the
 *     examples (target: faster) and functorch/torch.func vmap(grad) when the installed torch has it (target: <= 1.5x).
 *     PyTorch runs at 1 and 2 threads, before and after gradserve (its better run kept); ratios are against its faster
 *     thread count, which is named. The same per-example request over HTTP is shown too.
 *
 *   npm run build:ts && node bench/batched/run.mjs [--reps 30] [--port 18491]
 *
 * Medians and p99 in ms; ratios are peer / gradserve (above 1: gradserve is faster).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop } from '../http/common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
const { GradserveClient } = await import(join(root, 'dist', 'client', 'index.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const reps = arg('reps', 30);
const port = arg('port', 18491);
const python = process.env.PYTHON ?? '/usr/bin/python3';
const N = 64, D = 784, H = 256, C = 10, B = 64;

// ---- data (deterministic) ------------------------------------------------------------------------------------------

let seed = 20261216;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const normal = (n, scale) => Float32Array.from({ length: n }, () => (rand() + rand() + rand()) * 2 * scale);
const data = {
  x: normal(N * D, 1),
  labels: Int32Array.from({ length: N }, () => Math.floor((rand() + 0.5) * C) % C),
  w1: normal(D * H, 1 / Math.sqrt(D)),
  b1: normal(H, 0.1),
  w2: normal(H * C, 1 / Math.sqrt(H)),
  b2: normal(C, 0.1),
};
const cotangents = normal(B * N * C, 1);

const graph = Object.freeze({
  inputs: {
    x: { shape: [null, D], datatype: 'FP32' }, labels: { shape: [null], datatype: 'INT32' },
    w1: { shape: [D, H], datatype: 'FP32' }, b1: { shape: [H], datatype: 'FP32' },
    w2: { shape: [H, C], datatype: 'FP32' }, b2: { shape: [C], datatype: 'FP32' },
  },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w1'] },
    { name: 'hb', op: 'add', inputs: ['h', 'b1'] },
    { name: 'a', op: 'relu', inputs: ['hb'] },
    { name: 'z', op: 'matmul', inputs: ['a', 'w2'] },
    { name: 'logits', op: 'add', inputs: ['z', 'b2'] },
    { name: 'loss', op: 'softmax_cross_entropy', inputs: ['logits', 'labels'] },
  ],
  outputs: ['logits'],
});
const params = ['w1', 'b1', 'w2', 'b2'];
const shapes = { x: [N, D], labels: [N], w1: [D, H], b1: [H], w2: [H, C], b2: [C] };
const clientInputs = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, { shape: shapes[k], data: v }]));
const engineInputs = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, tensor(v instanceof Int32Array ? 'INT32' : 'FP32', shapes[k], v)]));

// ---- timing ------------------------------------------------------------------------------------------------------

function stats(ts) {
  const s = [...ts].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))];
  return { median: at(0.5), p99: at(0.99) };
}

async function timed(fn, n = reps) {
  await fn();
  await fn();
  const ts = [];
  let out;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    out = await fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ...stats(ts), out };
}

const ms = (s) => `median ${s.median.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms`;
const maxRelDiff = (a, b) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
};

// ---- PyTorch peer -------------------------------------------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), 'gradserve-bench-batched-'));
for (const [k, v] of Object.entries(data)) writeFileSync(join(dataDir, k), Buffer.from(v.buffer, v.byteOffset, v.byteLength));

function torch(threads) {
  const r = spawnSync(python, [join(here, 'torch_peer.py'), dataDir, String(threads), String(reps)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`PyTorch peer (${threads} threads) failed: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}`);
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}
const better = (a, b) => {
  if (!a || !b) return a ?? b;
  const pick = (x, y) => (x === null || x === undefined ? y : y === null || y === undefined ? x : x.median <= y.median ? x : y);
  return { ...a, loop: pick(a.loop, b.loop), vmap: pick(a.vmap, b.vmap) };
};
const torchBefore = { 1: torch(1), 2: torch(2) };

// ---- 1. 64 VJPs over HTTP -----------------------------------------------------------------------------------------

const server = start(join(root, 'dist', 'cli.js'), ['serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'silent'], port, '/v2/health/ready');
await server.ready;
const gs = new GradserveClient({ baseUrl: server.url });
const one = (b) => ({ shape: [N, C], data: cotangents.subarray(b * N * C, (b + 1) * N * C) });

/** One batched request vs 64 single ones (sequential, and 8 in flight), gradients with respect to `wrt`. */
async function vjps(wrt) {
  const batched = await timed(() => gs.vjp({ graph, inputs: clientInputs, cotangents: { logits: { shape: [B, N, C], data: cotangents } }, wrt, batched: true }));
  const sequential = await timed(async () => {
    const out = [];
    for (let b = 0; b < B; b++) out.push(await gs.vjp({ graph, inputs: clientInputs, cotangents: { logits: one(b) }, wrt }));
    return out;
  }, Math.max(5, Math.round(reps / 3)));
  const concurrent = await timed(async () => {
    const out = new Array(B);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < B) {
        const b = next++;
        out[b] = await gs.vjp({ graph, inputs: clientInputs, cotangents: { logits: one(b) }, wrt });
      }
    }));
    return out;
  }, Math.max(5, Math.round(reps / 3)));
  // same numbers: member b of the batched answer is the b-th single answer
  let diff = 0;
  for (let b = 0; b < B; b++) {
    for (const p of wrt) {
      const g = batched.out.gradients[p];
      const n = g.data.length / B;
      diff = Math.max(diff, maxRelDiff(g.data.subarray(b * n, (b + 1) * n), sequential.out[b].gradients[p].data));
    }
  }
  return { batched, sequential, concurrent, diff, bytes: Object.values(batched.out.gradients).reduce((s, g) => s + g.data.byteLength, 0) };
}
const vjpInput = await vjps(['x']);
const vjpParams = await vjps(params);

// ---- 2. per-example gradients -------------------------------------------------------------------------------------

const perExample = { axis: 0, inputs: ['x', 'labels'] };
const lossGraph = Object.freeze({ ...graph, outputs: ['loss'] });
const inProcess = await timed(() => engine.grad(lossGraph, engineInputs, 'loss', params, { per_example: perExample }));
const overHttp = await timed(() => gs.grad({ graph: lossGraph, inputs: clientInputs, of: 'loss', wrt: params, per_example: perExample }));
await stop(server);

const torchAfter = { 1: torch(1), 2: torch(2) };
rmSync(dataDir, { recursive: true, force: true });
const peers = { 1: better(torchBefore[1], torchAfter[1]), 2: better(torchBefore[2], torchAfter[2]) };

// ---- report -------------------------------------------------------------------------------------------------------

const norms = (grads) => Array.from({ length: N }, (_, i) => Math.sqrt(params.reduce((s, p) => {
  const g = grads[p].data;
  const n = g.length / N;
  let q = 0;
  for (let k = i * n; k < (i + 1) * n; k++) q += g[k] * g[k];
  return s + q;
}, 0)));
const ours = norms(inProcess.out.gradients);

console.log(`gradserve batched derivatives: MLP ${D}-${H}-${C} (relu, cross entropy), batch ${N}, FP32; ${reps} reps`);
console.log(`machine: ${(await import('node:os')).cpus().length} cores, load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('\n## 1. 64 VJPs over HTTP (TypeScript client, binary framing), cotangents on the logits');
for (const [what, r] of [['with respect to the input x (64 sensitivities dlogits/dx)', vjpInput], ['with respect to every parameter (w1, b1, w2, b2)', vjpParams]]) {
  console.log(`${what}: the batched answer holds ${(r.bytes / 2 ** 20).toFixed(1)} MiB of gradients`);
  console.log(`  one batched request:             ${ms(r.batched)}`);
  console.log(`  64 single requests, sequential:  ${ms(r.sequential)}`);
  console.log(`  64 single requests, 8 in flight: ${ms(r.concurrent)}`);
  const base = r.sequential.median <= r.concurrent.median ? ['sequential', r.sequential] : ['8 in flight', r.concurrent];
  console.log(`  batched vs the faster singles (${base[0]}): ${(base[1].median / r.batched.median).toFixed(2)}x faster (target >= 8x); p99 ${(base[1].p99 / r.batched.p99).toFixed(2)}x`);
  console.log(`  same numbers: max relative difference batched vs single ${r.diff.toExponential(2)}`);
}

console.log('\n## 2. per-example gradients (64 examples)');
console.log(`gradserve in-process (engine.grad, per_example): ${ms(inProcess)}; ${JSON.stringify(inProcess.out.batching)}`);
console.log(`gradserve over HTTP (client.grad, per_example):  ${ms(overHttp)}`);
for (const t of [1, 2]) {
  const p = peers[t];
  if (!p) continue;
  console.log(`PyTorch ${p.version}, ${p.threads} thread${p.threads > 1 ? 's' : ''}: loop ${ms(p.loop)}; ${p.vmap ? `${p.vmap_api}.vmap(grad) ${ms(p.vmap)}` : `vmap(grad) unavailable (${p.vmap_error})`}`);
}
const fastest = (key) => [1, 2].map((t) => peers[t]).filter((p) => p?.[key]).sort((a, b) => a[key].median - b[key].median)[0];
const loopPeer = fastest('loop');
const vmapPeer = fastest('vmap');
if (loopPeer) {
  console.log(`vs PyTorch looping over examples (faster at ${loopPeer.threads} thread${loopPeer.threads > 1 ? 's' : ''}): gradserve ${(loopPeer.loop.median / inProcess.median).toFixed(2)}x faster (target: > 1x); p99 ${(loopPeer.loop.p99 / inProcess.p99).toFixed(2)}x`);
  console.log(`  same numbers: max relative difference of the per-example gradient norms ${maxRelDiff(ours, loopPeer.loop.check).toExponential(2)}`);
}
if (vmapPeer) {
  console.log(`vs ${vmapPeer.vmap_api}.vmap(grad) (faster at ${vmapPeer.threads} thread${vmapPeer.threads > 1 ? 's' : ''}): gradserve/torch = ${(inProcess.median / vmapPeer.vmap.median).toFixed(2)}x the time (target: <= 1.5x); p99 ${(inProcess.p99 / vmapPeer.vmap.p99).toFixed(2)}x`);
  console.log(`  same numbers: max relative difference of the per-example gradient norms ${maxRelDiff(ours, vmapPeer.vmap.check).toExponential(2)}`);
}
