#!/usr/bin/env node
/**
 * HTTP benchmark, loopback, bounded (every phase has a fixed duration or repetition count):
 *  1. req/s and p50/p99 of a small /v1/grad against a bare Fastify hello-world route, same autocannon settings;
 *  2. HTTP overhead: sequential /v1/grad latency minus the in-process engine.grad time for the same graph;
 *  3. one vs two concurrent clients on an MLP (batch 64, b64) /v1/grad;
 *  4. MB/s for a large tensor in JSON vs b64;
 *  5. the seed-scale VJP (x[64,4096], w[4096,4096] FP32, b64) end to end vs PyTorch in-process.
 *
 *   npm run build:ts && node bench/http/run.mjs [--duration 8] [--connections 10] [--phases 1,2,3,4,5]
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { b64, f32, median, mlpBody, post, smallBody, smallGraph, smallInputs, start, stop } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine } = await import(join(root, 'dist', 'index.js'));
const { decodeTensor } = await import(join(root, 'dist', 'tensor', 'wire.js'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const duration = arg('duration', 8);
const phases = new Set(String(process.argv.includes('--phases') ? process.argv[process.argv.indexOf('--phases') + 1] : '1,2,3,4,5').split(',').map(Number));
const connections = arg('connections', 10);
const python = process.env.PYTHON ?? '/usr/bin/python3';


// ---- servers ------------------------------------------------------------------------------------------------------

const hello = start(join(here, 'hello.mjs'), ['18481'], 18481, '/hello');
const gs = start(join(root, 'dist', 'cli.js'), ['serve', '--host', '127.0.0.1', '--port', '18482', '--log-level', 'silent'], 18482, '/v2/health/ready');
await Promise.all([hello.ready, gs.ready]);

const cannon = (opts) => new Promise((resolve, reject) => {
  autocannon({ duration, connections, pipelining: 1, ...opts }, (err, res) => (err ? reject(err) : resolve(res)));
});
const fmt = (r) => `${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`;

// ---- 1. small /v1/grad vs hello-world ----------------------------------------------------------------------------

if (phases.has(1)) {
// Warm both servers.
await cannon({ url: `${hello.url}/hello`, duration: 1 });
await cannon({ url: `${gs.url}/v1/grad`, duration: 1, ...post(smallBody) });
const rHello = await cannon({ url: `${hello.url}/hello` });
const rGrad = await cannon({ url: `${gs.url}/v1/grad`, ...post(smallBody) });
console.log(`\n## 1. throughput (autocannon, ${connections} connections, ${duration} s, loopback, same machine)`);
console.log(`hello-world (bare Fastify): ${fmt(rHello)}`);
console.log(`small /v1/grad (2-layer MLP, batch 8): ${fmt(rGrad)}`);
console.log(`ratio grad/hello: ${(rGrad.requests.average / rHello.requests.average).toFixed(2)}`);
}

// ---- 2. HTTP overhead ---------------------------------------------------------------------------------------------
if (phases.has(2)) {
// Sequential round trips over one keep-alive connection with node:http (lighter than fetch), p50 of 2000.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const roundTrip = (url, body) => new Promise((resolve, reject) => {
  const u = new URL(url);
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: body ? 'POST' : 'GET', agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
    res.on('data', () => {});
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
  });
  req.on('error', reject);
  req.end(body);
});
const seq = async (url, body) => {
  for (let i = 0; i < 2000; i++) await roundTrip(url, body);
  const ts = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    await roundTrip(url, body);
    ts.push(performance.now() - t0);
  }
  return median(ts);
};
const helloRt = await seq(`${hello.url}/hello`);
const gradRt = await seq(`${gs.url}/v1/grad`, smallBody);
const decoded = Object.fromEntries(Object.entries(smallInputs).map(([k, v]) => [k, decodeTensor(v, `inputs.${k}`)]));
const inproc = [];
for (let i = 0; i < 300; i++) await engine.grad(smallGraph, decoded, 'loss', ['w1', 'w2']);
for (let i = 0; i < 2000; i++) {
  const t0 = performance.now();
  await engine.grad(smallGraph, decoded, 'loss', ['w1', 'w2']);
  inproc.push(performance.now() - t0);
}
const inP50 = median(inproc);
console.log('\n## 2. HTTP overhead, small /v1/grad, sequential on one keep-alive connection (p50 of 2000)');
console.log(`hello-world round trip ${helloRt.toFixed(3)} ms; /v1/grad round trip ${gradRt.toFixed(3)} ms; in-process engine.grad ${inP50.toFixed(3)} ms`);
console.log(`HTTP overhead = ${gradRt.toFixed(3)} − ${inP50.toFixed(3)} = ${(gradRt - inP50).toFixed(3)} ms`);
}

// ---- 3. one vs two clients, MLP batch 64 b64 -----------------------------------------------------------------------
const mlp = mlpBody();
if (phases.has(3)) {
await cannon({ url: `${gs.url}/v1/grad`, duration: 1, connections: 1, ...post(mlp) });
const one = await cannon({ url: `${gs.url}/v1/grad`, connections: 1, ...post(mlp) });
const two = await cannon({ url: `${gs.url}/v1/grad`, connections: 2, ...post(mlp) });
console.log(`\n## 3. MLP 784-256-10, batch 64, b64 (${(mlp.length / 1e6).toFixed(2)} MB body)`);
console.log(`1 client: ${fmt(one)}`);
console.log(`2 clients: ${fmt(two)}`);
console.log(`scaling 2 vs 1: ${(two.requests.average / one.requests.average).toFixed(2)}x`);
}

// ---- 4. large tensors: JSON vs b64 --------------------------------------------------------------------------------
if (phases.has(4)) {
const n = 1 << 22;
const big = f32(n);
const negGraph = { inputs: { x: { shape: [n], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], outputs: ['y'] };
const bodies = {
  json: JSON.stringify({ graph: negGraph, inputs: { x: { shape: [n], datatype: 'FP32', data: Array.from(big) } } }),
  b64: JSON.stringify({ graph: negGraph, inputs: { x: { shape: [n], datatype: 'FP32', b64: b64(big) } }, encoding: 'b64' }),
};
console.log(`\n## 4. large tensor round trip: /v1/evaluate of neg on ${n} FP32 (${(n * 4 / 1e6).toFixed(1)} MB in, same out)`);
for (const enc of ['json', 'b64']) {
  const ts = [];
  let wire = 0;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    const r = await fetch(`${gs.url}/v1/evaluate`, post(bodies[enc]));
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${enc}: ${r.status} ${text.slice(0, 200)}`);
    JSON.parse(text);
    ts.push(performance.now() - t0);
    wire = bodies[enc].length + text.length;
  }
  const ms = median(ts.slice(1));
  console.log(`${enc.padEnd(4)}: ${ms.toFixed(0)} ms per round trip, ${(2 * n * 4 / 1e6 / (ms / 1e3)).toFixed(0)} MB/s of tensor data, ${(wire / 1e6).toFixed(0)} MB on the wire (${(wire / 1e6 / (ms / 1e3)).toFixed(0)} MB/s)`);
}
}

// ---- 5. seed-scale VJP vs PyTorch ---------------------------------------------------------------------------------
if (phases.has(5)) {
  const [N, D, M] = [64, 4096, 4096];
  const seedGraph = { inputs: { x: { shape: [N, D], datatype: 'FP32' }, w: { shape: [D, M], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] };
  const seedBody = JSON.stringify({
    graph: seedGraph,
    inputs: { x: { shape: [N, D], datatype: 'FP32', b64: b64(f32(N * D)) }, w: { shape: [D, M], datatype: 'FP32', b64: b64(f32(D * M)) } },
    cotangents: { y: { shape: [N, M], datatype: 'FP32', b64: b64(f32(N * M)) } },
    wrt: ['x', 'w'], encoding: 'b64',
  });
  const ts = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    const r = await fetch(`${gs.url}/v1/vjp`, post(seedBody));
    const text = await r.text();
    if (r.status !== 200) throw new Error(`seed vjp: ${r.status} ${text.slice(0, 300)}`);
    JSON.parse(text);
    ts.push(performance.now() - t0);
  }
  const httpMs = median(ts.slice(1));
  // The same request from a lean node:http client (body sent as bytes, response kept as bytes): fetch's text() and
  // JSON.parse of 65 MB cost the client ~0.3 s, which is the client's share, not the server's.
  const seedBytes = Buffer.from(seedBody);
  const leanAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const lean = () => new Promise((resolve, reject) => {
    const u = new URL(`${gs.url}/v1/vjp`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: leanAgent, headers: { 'content-type': 'application/json', 'content-length': seedBytes.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(seedBytes);
  });
  const lts = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    await lean();
    lts.push(performance.now() - t0);
  }
  leanAgent.destroy();
  const leanMs = median(lts.slice(1));
  // The same VJP in-process, on already decoded tensors: the difference to httpMs is what HTTP and JSON cost.
  const parsedSeed = JSON.parse(seedBody);
  const dec = (w, p) => decodeTensor(w, p);
  const ins = { x: dec(parsedSeed.inputs.x, 'inputs.x'), w: dec(parsedSeed.inputs.w, 'inputs.w') };
  const cts = { y: dec(parsedSeed.cotangents.y, 'cotangents.y') };
  const its = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await engine.vjp(seedGraph, ins, cts, ['x', 'w']);
    its.push(performance.now() - t0);
  }
  const inMs = median(its.slice(1));
  const peer = spawnSync(python, [join(here, 'torch_vjp.py'), String(N), String(D), String(M), '5', '2'], { encoding: 'utf8' });
  console.log(`\n## 5. seed-scale VJP: x[${N},${D}], w[${D},${M}] FP32, b64, ${(seedBody.length / 1e6).toFixed(0)} MB request`);
  console.log(`gradserve over HTTP, end to end: fetch + text() + JSON.parse ${httpMs.toFixed(0)} ms; lean node:http client (bytes in, bytes out) ${leanMs.toFixed(0)} ms; in-process engine.vjp: ${inMs.toFixed(0)} ms; HTTP + JSON + b64 (lean): ${(leanMs - inMs).toFixed(0)} ms`);
  if (peer.status === 0) {
    const t = JSON.parse(peer.stdout);
    console.log(`PyTorch ${t.version} in-process (${t.threads} threads): ${t.ms.toFixed(0)} ms; ratio fetch ${(httpMs / t.ms).toFixed(2)}x, lean ${(leanMs / t.ms).toFixed(2)}x`);
  } else {
    console.log(`PyTorch peer unavailable (${python}): ${peer.stderr.split('\n').slice(-2).join(' ')}`);
  }
}

await Promise.all([stop(hello), stop(gs)]);
