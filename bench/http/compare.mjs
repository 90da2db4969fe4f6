#!/usr/bin/env node
/**
 * Before/after comparison in one run: starts gradserve from two built trees (each with its own dist/), plus the bare
 * Fastify hello-world, and measures them alternately (A, B, B, A) so drift and other load on the machine hit both.
 *
 *   node bench/http/compare.mjs --a /path/to/old/checkout --b . [--duration 5] [--phases 1,2,3,5] [--rounds 2]
 *
 * 0. in-process app.inject time per small /v1/grad; 1. autocannon req/s of a small /v1/grad (and hello-world); 2. sequential round-trip p50 of the same request;
 * 3. MLP batch 64 b64 with 1 and 2 concurrent clients; 5. the seed-scale VJP end to end with a lean node:http client
 * (body sent as a Buffer, response collected as Buffers), so that the figure is the server's, not fetch's.
 * Extra server flags go after `--`, e.g. `-- --blas-threads 1`. Bounded: fixed durations and repetition counts.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { b64, f32, median, mlpBody, post, smallBody, start, stop } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const serverArgs = dash >= 0 ? argv.slice(dash + 1) : [];
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && (dash < 0 || i < dash) ? argv[i + 1] : dflt;
};
const roots = { A: resolve(opt('a', '.')), B: resolve(opt('b', '.')) };
const duration = Number(opt('duration', 5));
const rounds = Number(opt('rounds', 2));
const phases = new Set(String(opt('phases', '0,1,2,3,5')).split(',').map(Number));


/** CPU seconds (user + system) used so far by a child process, from /proc (Linux); NaN elsewhere. */
const cpuOf = (s) => {
  try {
    const f = readFileSync(`/proc/${s.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
};
const CLK_TCK = 100;

const hello = start(join(here, 'hello.mjs'), ['18581'], 18581, '/hello');
const servers = {
  A: start(join(roots.A, 'dist', 'cli.js'), ['serve', '--host', '127.0.0.1', '--port', '18582', '--log-level', 'silent', ...serverArgs], 18582, '/v2/health/ready'),
  B: start(join(roots.B, 'dist', 'cli.js'), ['serve', '--host', '127.0.0.1', '--port', '18583', '--log-level', 'silent', ...serverArgs], 18583, '/v2/health/ready'),
};
await Promise.all([hello.ready, servers.A.ready, servers.B.ready]);
const order = [];
for (let r = 0; r < rounds; r++) order.push(...(r % 2 === 0 ? ['A', 'B'] : ['B', 'A']));

/** autocannon against `server`; also the server's CPU time per request, which other load on the machine hardly moves. */
const cannon = async (server, opts) => {
  const c0 = cpuOf(server);
  const r = await new Promise((res, rej) => {
    autocannon({ duration, connections: 10, pipelining: 1, ...opts }, (err, x) => (err ? rej(err) : res(x)));
  });
  r.cpuUs = ((cpuOf(server) - c0) / r.requests.total) * 1e6;
  return r;
};
const fmt = (r) => `${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, server CPU ${r.cpuUs.toFixed(0)} µs/req`;


if (phases.has(0)) {
  // In-process, no sockets: both apps built in this process and driven with inject, rounds interleaved. The
  // steadiest figure of the per-request fixed cost (light-my-request's own overhead included, the same for both).
  console.log('\n## 0. in-process small /v1/grad through app.inject (µs per request, 10 rounds of 1000)');
  const apps = {};
  for (const k of ['A', 'B']) {
    const { buildApp } = await import(join(roots[k], 'dist', 'server', 'app.js'));
    apps[k] = await buildApp({ logLevel: 'silent' });
    await apps[k].ready();
  }
  const one = async (k) => {
    const r = await apps[k].inject({ method: 'POST', url: '/v1/grad', headers: { 'content-type': 'application/json' }, payload: smallBody });
    if (r.statusCode !== 200) throw new Error(r.body);
  };
  const per = { A: [], B: [] };
  for (const k of ['A', 'B']) for (let i = 0; i < 3000; i++) await one(k);
  for (let round = 0; round < 10; round++) {
    for (const k of round % 2 ? ['A', 'B'] : ['B', 'A']) {
      const t = performance.now();
      for (let i = 0; i < 1000; i++) await one(k);
      per[k].push(performance.now() - t);
    }
  }
  for (const k of ['A', 'B']) console.log(`${k}: median ${median(per[k]).toFixed(0)} µs, best ${Math.min(...per[k]).toFixed(0)} µs`);
  for (const k of ['A', 'B']) await apps[k].close();
}

if (phases.has(1)) {
  console.log(`\n## 1. small /v1/grad throughput (autocannon, 10 connections, ${duration} s)`);
  await cannon(hello, { url: `${hello.url}/hello`, duration: 1 });
  for (const k of ['A', 'B']) await cannon(servers[k], { url: `${servers[k].url}/v1/grad`, duration: 1, ...post(smallBody) });
  for (const k of order) {
    const h = await cannon(hello, { url: `${hello.url}/hello` });
    const g = await cannon(servers[k], { url: `${servers[k].url}/v1/grad`, ...post(smallBody) });
    console.log(`${k}: /v1/grad ${fmt(g)} | hello ${h.requests.average.toFixed(0)} req/s, CPU ${h.cpuUs.toFixed(0)} µs/req | ratio ${(g.requests.average / h.requests.average).toFixed(3)}`);
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
/** One request on a keep-alive connection; resolves with the response bytes. */
const request = (url, path, body) => new Promise((res, rej) => {
  const u = new URL(url);
  const req = http.request({ host: u.hostname, port: u.port, path, method: body ? 'POST' : 'GET', agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (r) => {
    const chunks = [];
    r.on('data', (c) => chunks.push(c));
    r.on('end', () => (r.statusCode === 200 ? res(Buffer.concat(chunks)) : rej(new Error(`status ${r.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
  });
  req.on('error', rej);
  req.end(body);
});

if (phases.has(2)) {
  console.log('\n## 2. sequential round trip on one keep-alive connection, small /v1/grad (p50 of 2000)');
  const seq = async (url, path, body) => {
    for (let i = 0; i < 1000; i++) await request(url, path, body);
    const ts = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      await request(url, path, body);
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  for (const k of order) {
    const h = await seq(hello.url, '/hello');
    const g = await seq(servers[k].url, '/v1/grad', smallBody);
    console.log(`${k}: /v1/grad ${g.toFixed(3)} ms | hello ${h.toFixed(3)} ms`);
  }
}

if (phases.has(3)) {
  const body = mlpBody();
  console.log(`\n## 3. MLP 784-256-10 batch 64, b64: 1 vs 2 clients (${duration} s each)`);
  for (const k of ['A', 'B']) await cannon(servers[k], { url: `${servers[k].url}/v1/grad`, duration: 1, connections: 1, ...post(body) });
  for (const k of order) {
    const one = await cannon(servers[k], { url: `${servers[k].url}/v1/grad`, connections: 1, ...post(body) });
    const two = await cannon(servers[k], { url: `${servers[k].url}/v1/grad`, connections: 2, ...post(body) });
    console.log(`${k}: 1 client ${fmt(one)} | 2 clients ${fmt(two)} | ${(two.requests.average / one.requests.average).toFixed(2)}x`);
  }
}

if (phases.has(5)) {
  const [N, D, M] = [64, 4096, 4096];
  const seedBody = Buffer.from(JSON.stringify({
    graph: { inputs: { x: { shape: [N, D], datatype: 'FP32' }, w: { shape: [D, M], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] },
    inputs: { x: { shape: [N, D], datatype: 'FP32', b64: b64(f32(N * D)) }, w: { shape: [D, M], datatype: 'FP32', b64: b64(f32(D * M)) } },
    cotangents: { y: { shape: [N, M], datatype: 'FP32', b64: b64(f32(N * M)) } },
    wrt: ['x', 'w'], encoding: 'b64',
  }));
  console.log(`\n## 5. seed-scale VJP, ${(seedBody.length / 1e6).toFixed(0)} MB request, lean node:http client (median of 5 after a warm-up)`);
  const ts = { A: [], B: [] };
  for (const k of ['A', 'B']) await request(servers[k].url, '/v1/vjp', seedBody);
  for (let i = 0; i < 5; i++) {
    for (const k of i % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
      const t0 = performance.now();
      const out = await request(servers[k].url, '/v1/vjp', seedBody);
      ts[k].push(performance.now() - t0);
      if (out.length < 1e6) throw new Error('short response');
    }
  }
  for (const k of ['A', 'B']) console.log(`${k}: median ${median(ts[k]).toFixed(0)} ms (${ts[k].map((t) => t.toFixed(0)).join(', ')})`);
  // The body parse alone, in this process: steadier than the end-to-end figure.
  const parse = {};
  for (const k of ['A', 'B']) parse[k] = (await import(join(roots[k], 'dist', 'server', 'body.js'))).parseJsonText;
  const pt = { A: [], B: [] };
  for (let i = 0; i < 8; i++) {
    for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) {
      const t0 = performance.now();
      parse[k](seedBody);
      pt[k].push(performance.now() - t0);
    }
  }
  for (const k of ['A', 'B']) console.log(`${k}: parsing the body in-process, median of 8: ${median(pt[k]).toFixed(0)} ms`);
}

agent.destroy();
await Promise.all([stop(hello), stop(servers.A), stop(servers.B)]);
