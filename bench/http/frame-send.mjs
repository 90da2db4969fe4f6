/**
 * How to write a framed response (API.md "Binary framing") of a 64 MiB result: a Readable over [header, padding,
 * blob views] handed to reply.send, the same parts written with reply.raw (hijacked, corked), or Buffer.concat of
 * everything into one Buffer (the copy the framing must avoid). A Fastify server in a child process, a node:http client
 * reading the bytes; median of the repetitions, plus the server's CPU time per response (from process.cpuUsage).
 *
 *   node bench/http/frame-send.mjs [--mib 64] [--reps 15]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { median } from './common.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const MIB = arg('--mib', 64);
const REPS = arg('--reps', 15);

if (process.argv.includes('--serve')) {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  // Two result tensors (most of the bytes in the first) and a small JSON header, as a vjp answer has.
  const big = new Float32Array((MIB * 1024 * 1024) / 4 - 1024);
  for (let i = 0; i < big.length; i += 1024) big[i] = i;
  const small = new Float32Array(1024);
  const header = Buffer.from(JSON.stringify({ outputs: { y: { shape: [small.length], datatype: 'FP32', binary_data_offset: 0, binary_data_size: small.byteLength } }, gradients: { w: { shape: [big.length], datatype: 'FP32', binary_data_offset: small.byteLength, binary_data_size: big.byteLength } } }).padEnd(512));
  const parts = () => [header, new Uint8Array(small.buffer), new Uint8Array(big.buffer)];
  const total = header.length + small.byteLength + big.byteLength;
  const frameHeaders = (reply) => reply.header('inference-header-content-length', String(header.length)).header('content-length', String(total)).type('application/octet-stream');
  let cpu = 0;
  app.addHook('onRequest', (_req, _reply, done) => { cpu = process.cpuUsage(); done(); });
  app.get('/cpu', async () => ({ last: lastCpu }));
  let lastCpu = 0;
  const track = (res) => res.on('finish', () => { const u = process.cpuUsage(cpu); lastCpu = (u.user + u.system) / 1000; });
  app.get('/readable', async (_req, reply) => { track(reply.raw); return frameHeaders(reply).send(Readable.from(parts(), { objectMode: false })); });
  app.get('/raw', (_req, reply) => {
    track(reply.raw);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'content-length': String(total) });
    res.cork();
    for (const p of parts()) res.write(p);
    res.uncork();
    res.end();
  });
  app.get('/push', async (_req, reply) => {
    track(reply.raw);
    const list = parts();
    return frameHeaders(reply).send(new Readable({ read() { for (const p of list) this.push(p); this.push(null); } }));
  });
  app.get('/concat', async (_req, reply) => { track(reply.raw); return frameHeaders(reply).send(Buffer.concat(parts())); });
  await app.listen({ port: Number(process.argv[process.argv.indexOf('--serve') + 1]), host: '127.0.0.1' });
} else {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', String(port), '--mib', String(MIB)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let n = 0;
      const chunks = [];
      res.on('data', (c) => { n += c.length; chunks.push(c); });
      // The client assembles the body once (what fetch's arrayBuffer() does), so every strategy pays the same here.
      res.on('end', () => { Buffer.concat(chunks, n); resolve({ ms: performance.now() - t0, n }); });
    }).on('error', reject);
  });
  for (let i = 0; i < 100; i++) {
    try { await get('/cpu'); break; } catch { await new Promise((r) => setTimeout(r, 50)); }
  }
  const results = {};
  for (const path of ['/readable', '/push', '/raw', '/concat']) results[path] = { ms: [], cpu: [] };
  for (let rep = 0; rep < REPS; rep++) {
    // Interleaved, so drifting load affects every strategy alike.
    for (const path of Object.keys(results)) {
      const { ms } = await get(path);
      const cpu = await new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/cpu', agent }, (res) => { let s = ''; res.on('data', (c) => { s += c; }); res.on('end', () => resolve(JSON.parse(s).last)); }));
      if (rep > 0) { results[path].ms.push(ms); results[path].cpu.push(cpu); }
    }
  }
  console.log(`framed response of ${MIB} MiB, ${REPS - 1} repetitions each (median):`);
  for (const [path, r] of Object.entries(results)) {
    console.log(`${path.padEnd(10)} round trip ${median(r.ms).toFixed(1)} ms   server CPU ${median(r.cpu).toFixed(1)} ms   (${(MIB / (median(r.ms) / 1000)).toFixed(0)} MiB/s)`);
  }
  agent.destroy();
  child.kill('SIGTERM');
}
