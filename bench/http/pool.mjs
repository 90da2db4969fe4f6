#!/usr/bin/env node
/**
 * libuv pool size (`--workers`) vs throughput of 8 concurrent heavy requests (three 1024×1024 matmuls each) and the
 * health-check latency meanwhile. Bounded: one batch of 8 per setting.
 *
 *   npm run build:ts && node bench/http/pool.mjs
 */

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const n = 1024;
const graph = { inputs: { s: { shape: [], datatype: 'FP32' } }, nodes: [ { name: 'a', op: 'broadcast_to', inputs: ['s'], attrs: { shape: [n, n] } }, { name: 'b', op: 'matmul', inputs: ['a', 'a'] }, { name: 'c', op: 'matmul', inputs: ['b', 'a'] }, { name: 'd', op: 'matmul', inputs: ['c', 'a'] }, { name: 'f', op: 'sum', inputs: ['d'] } ], outputs: ['f'] };
for (const workers of [1, 2, 4, 8]) {
  const port = 18700 + workers;
  const child = spawn(process.execPath, [cli, 'serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'silent', '--workers', String(workers)], { stdio: 'inherit' });
  for (let i = 0; i < 100; i++) { try { if ((await fetch(`http://127.0.0.1:${port}/v2/health/live`)).ok) break; } catch {} await new Promise(r => setTimeout(r, 50)); }
  const post = () => fetch(`http://127.0.0.1:${port}/v1/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ graph, inputs: { s: 1e-3 } }) }).then(r => r.json());
  await post();
  const t0 = performance.now();
  let running = true; const lat = [];
  const probe = (async () => { while (running) { const t = performance.now(); await fetch(`http://127.0.0.1:${port}/v2/health/live`); lat.push(performance.now() - t); await new Promise(r => setTimeout(r, 10)); } })();
  await Promise.all(Array.from({ length: 8 }, post));
  const wall = performance.now() - t0; running = false; await probe;
  lat.sort((a, b) => a - b);
  console.log(`workers ${workers}: 8 heavy requests in ${wall.toFixed(0)} ms; health p50 ${lat[lat.length >> 1].toFixed(1)} ms, p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(1)} ms (${lat.length} probes)`);
  await new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); });
}
