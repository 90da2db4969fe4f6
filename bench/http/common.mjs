// Shared by the HTTP benchmarks (run.mjs, compare.mjs): deterministic data, server start/stop, and the small
// /v1/grad workload, so both scripts measure exactly the same request.
import { spawn } from 'node:child_process';

export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

let seed = 11;
export const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
export const f32 = (n) => Float32Array.from({ length: n }, rand);
export const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** Starts `node cmd ...args` and resolves `ready` once GET `probe` on 127.0.0.1:`port` answers 2xx. */
export function start(cmd, args, port, probe) {
  const child = spawn(process.execPath, [cmd, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env } });
  const url = `http://127.0.0.1:${port}`;
  const ready = (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`${url}${probe}`)).ok) return;
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${cmd} did not come up`);
  })();
  return { child, url, ready };
}

export const stop = (s) => new Promise((r) => { s.child.on('exit', r); s.child.kill('SIGTERM'); });

export const post = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });

/** A 2-layer MLP at batch 8 with b64 inputs: the "small /v1/grad" of the HTTP targets. */
export const smallGraph = {
  inputs: { x: { shape: [8, 16], datatype: 'FP32' }, w1: { shape: [16, 16], datatype: 'FP32' }, w2: { shape: [16, 1], datatype: 'FP32' } },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w1'] },
    { name: 'a', op: 'relu', inputs: ['h'] },
    { name: 'o', op: 'matmul', inputs: ['a', 'w2'] },
    { name: 'loss', op: 'mean', inputs: ['o'] },
  ],
  outputs: ['loss'],
};
export const smallInputs = {
  x: { shape: [8, 16], datatype: 'FP32', b64: b64(f32(128)) },
  w1: { shape: [16, 16], datatype: 'FP32', b64: b64(f32(256)) },
  w2: { shape: [16, 1], datatype: 'FP32', b64: b64(f32(16)) },
};
export const smallBody = JSON.stringify({ graph: smallGraph, inputs: smallInputs, of: 'loss', wrt: ['w1', 'w2'] });

/** MLP 784-256-10 at batch 64 with softmax cross entropy, b64 in and out: the "medium" /v1/grad of the HTTP targets. */
export function mlpBody() {
  const labels = Int32Array.from({ length: 64 }, (_, i) => i % 10);
  return JSON.stringify({
    graph: {
      inputs: { x: { shape: [64, 784], datatype: 'FP32' }, w1: { shape: [784, 256], datatype: 'FP32' }, w2: { shape: [256, 10], datatype: 'FP32' }, labels: { shape: [64], datatype: 'INT32' } },
      nodes: [
        { name: 'h', op: 'matmul', inputs: ['x', 'w1'] },
        { name: 'a', op: 'relu', inputs: ['h'] },
        { name: 'logits', op: 'matmul', inputs: ['a', 'w2'] },
        { name: 'loss', op: 'softmax_cross_entropy', inputs: ['logits', 'labels'] },
      ],
      outputs: ['loss'],
    },
    inputs: {
      x: { shape: [64, 784], datatype: 'FP32', b64: b64(f32(64 * 784)) },
      w1: { shape: [784, 256], datatype: 'FP32', b64: b64(f32(784 * 256)) },
      w2: { shape: [256, 10], datatype: 'FP32', b64: b64(f32(2560)) },
      labels: { shape: [64], datatype: 'INT32', b64: b64(labels) },
    },
    of: 'loss', wrt: ['w1', 'w2'], encoding: 'b64',
  });
}
