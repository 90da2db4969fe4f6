/**
 * The seed-scale VJP (x[64,4096], w[4096,4096], dL/dy[64,4096], FP32) over HTTP, b64 vs binary framing, end to end
 * with the TypeScript client (encode, send, compute, receive, decode to typed arrays), plus lean node:http exchanges
 * of prepared bodies (what the service itself costs; also into a receive buffer kept between calls), the same bytes
 * through a bare node:http server that computes nothing (the transport's floor on this machine), and the in-process
 * engine for reference. Median of --reps.
 *
 *   npm run build:ts && node bench/http/binary.mjs [--reps 7] [--root <built tree>]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { b64, f32, median, start, stop } from './common.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const REPS = Number(arg('--reps', 7));
const ROOT = resolve(arg('--root', join(import.meta.dirname, '../..')));
const { GradserveClient } = await import(pathToFileURL(join(ROOT, 'dist/client/index.js')).href);

const N = 64;
const D = 4096;
const M = 4096;
const graph = { inputs: { x: { shape: [N, D], datatype: 'FP32' }, w: { shape: [D, M], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] };
const x = f32(N * D);
const w = f32(D * M);
const dy = f32(N * M);
const tensor = (data, shape) => ({ shape, datatype: 'FP32', data });
const req = { graph, inputs: { x: tensor(x, [N, D]), w: tensor(w, [D, M]) }, cotangents: { y: tensor(dy, [N, M]) }, wrt: ['x', 'w'] };

const port = 18500 + Math.floor(Math.random() * 400);
const server = start(join(ROOT, 'dist/cli.js'), ['serve', '--port', String(port), '--log-level', 'warn'], port, '/v2/health/ready');
await server.ready;
const url = `http://127.0.0.1:${port}`;

async function timed(fn) {
  const ms = [];
  for (let i = 0; i <= REPS; i++) {
    const t0 = performance.now();
    await fn();
    if (i > 0) ms.push(performance.now() - t0); // the first run warms caches and the connection
  }
  return median(ms);
}

// Prepared bodies for the lean exchanges: the service's own cost without the client's encoding.
const b64Body = Buffer.from(JSON.stringify({
  graph,
  inputs: { x: { shape: [N, D], datatype: 'FP32', b64: b64(x) }, w: { shape: [D, M], datatype: 'FP32', b64: b64(w) } },
  cotangents: { y: { shape: [N, M], datatype: 'FP32', b64: b64(dy) } },
  wrt: ['x', 'w'], encoding: 'b64',
}));
const head = Buffer.from(JSON.stringify({
  graph,
  inputs: { x: { shape: [N, D], datatype: 'FP32', binary_data_size: x.byteLength }, w: { shape: [D, M], datatype: 'FP32', binary_data_size: w.byteLength } },
  cotangents: { y: { shape: [N, M], datatype: 'FP32', binary_data_size: dy.byteLength } },
  wrt: ['x', 'w'], encoding: 'binary',
}).padEnd(1024));
const framedBody = Buffer.concat([head, Buffer.from(x.buffer), Buffer.from(w.buffer), Buffer.from(dy.buffer)]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const lean = (body, headers) => new Promise((resolveBytes, reject) => {
  const r = http.request(`${url}/v1/vjp`, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => (res.statusCode === 200 ? resolveBytes(Buffer.concat(chunks)) : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
  });
  r.on('error', reject);
  r.end(body);
});

// The same exchange read into one receive buffer kept between calls (what a client that reuses its memory pays): no
// fresh 67 MB answer to allocate and fault in per call, so what is left is the service and the socket.
let keep = Buffer.alloc(0);
const leanInto = (body, headers) => new Promise((resolveBytes, reject) => {
  const r = http.request(`${url}/v1/vjp`, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
    const len = Number(res.headers['content-length']);
    if (!(len >= 0) || res.statusCode !== 200) {
      res.resume();
      reject(new Error(`${res.statusCode}, content-length ${res.headers['content-length']}`));
      return;
    }
    if (keep.length < len) keep = Buffer.alloc(len);
    let off = 0;
    res.on('data', (c) => {
      c.copy(keep, off);
      off += c.length;
    });
    res.on('end', () => resolveBytes(keep.subarray(0, off)));
  });
  r.on('error', reject);
  r.end(body);
});

const viaB64 = new GradserveClient({ baseUrl: url, binary: 'never' });
const viaBinary = new GradserveClient({ baseUrl: url });
// Same answers both ways, bit for bit.
const a = await viaB64.vjp(req);
const b = await viaBinary.vjp(req);
for (const k of ['x', 'w']) {
  const p = new Uint8Array(a.gradients[k].data.buffer, a.gradients[k].data.byteOffset, a.gradients[k].data.byteLength);
  const q = new Uint8Array(b.gradients[k].data.buffer, b.gradients[k].data.byteOffset, b.gradients[k].data.byteLength);
  if (Buffer.compare(p, q) !== 0) throw new Error(`gradient ${k} differs between b64 and binary`);
}

const rows = [
  ['TS client, b64 both ways (binary: never)', await timed(() => viaB64.vjp(req))],
  ['TS client, binary framing both ways (default)', await timed(() => viaBinary.vjp(req))],
  ['lean node:http, prepared b64 body, b64 answer bytes', await timed(() => lean(b64Body, { 'content-type': 'application/json' }))],
  ['lean node:http, prepared framed body, framed answer bytes', await timed(() => lean(framedBody, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) }))],
  ['  the same, answer read into a buffer kept between calls', await timed(() => leanInto(framedBody, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) }))],
];
// The transport's floor: a bare node:http server in its own process that reads the same request bytes and answers as
// many bytes as gradserve's framed answer, no compute and no copies on its side, read by the same lean client.
const answerBytes = (await leanInto(framedBody, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) })).length;
const floorPort = port + 1;
const floorSrc = `const a = Buffer.alloc(${answerBytes}, 1); require('node:http').createServer((q, s) => { q.on('data', () => {}); q.on('end', () => { s.writeHead(200, { 'content-length': a.length }); s.end(a); }); }).listen(${floorPort}, '127.0.0.1', () => console.log('ready'));`;
const floor = spawn(process.execPath, ['-e', floorSrc], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => floor.stdout.once('data', r));
const floorUrl = `http://127.0.0.1:${floorPort}`;
const bare = () => new Promise((resolveBytes, reject) => {
  const r = http.request(`${floorUrl}/`, { method: 'POST', agent, headers: { 'content-length': framedBody.length } }, (res) => {
    const len = Number(res.headers['content-length']);
    if (keep.length < len) keep = Buffer.alloc(len);
    let off = 0;
    res.on('data', (c) => {
      c.copy(keep, off);
      off += c.length;
    });
    res.on('end', () => resolveBytes(off));
  });
  r.on('error', reject);
  r.end(framedBody);
});
rows.push(['bare node:http server, same bytes, no compute (floor)', await timed(bare)]);
floor.kill();

const { engine } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href);
const ins = { x: { dtype: 'FP32', shape: [N, D], data: x }, w: { dtype: 'FP32', shape: [D, M], data: w } };
rows.push(['in-process engine.vjp (no HTTP)', await timed(() => engine.vjp(graph, ins, { y: { dtype: 'FP32', shape: [N, M], data: dy } }, ['x', 'w']))]);

console.log(`seed-scale VJP x[${N},${D}] w[${D},${M}] FP32: request ${(b64Body.length / 1e6).toFixed(1)} MB as b64, ${(framedBody.length / 1e6).toFixed(1)} MB framed, answer ${(answerBytes / 1e6).toFixed(1)} MB framed; median of ${REPS}`);
for (const [name, ms] of rows) console.log(`${name.padEnd(58)} ${ms.toFixed(0).padStart(5)} ms`);
console.log(`TS client end to end: binary is ${(rows[0][1] / rows[1][1]).toFixed(2)}x faster than b64; lean exchange: ${(rows[2][1] / rows[3][1]).toFixed(2)}x`);
agent.destroy();
await stop(server);
