#!/usr/bin/env node
/**
 * Body parsing of large JSON tensors: Fastify's default JSON parser vs gradserve's (src/server/body.ts), in-process
 * and through app.inject, on bodies of 10^6 and 10^7 numbers; plus b64 decoding speed.
 *
 *   npm run build:ts && node bench/http/json-parse.mjs
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'node_modules', 'fastify', 'package.json'));
const sjson = require('secure-json-parse');
const Fastify = (await import(join(root, 'node_modules', 'fastify', 'fastify.js'))).default;
const { parseJsonText } = await import(join(root, 'dist', 'server', 'body.js'));
const { decodeTensor } = await import(join(root, 'dist', 'tensor', 'wire.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
function time(fn, reps) {
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}
async function timeAsync(fn, reps) {
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

// Fastify's own default parser, exactly as it is configured out of the box.
const fastifyDefault = Fastify({ logger: false, bodyLimit: 1 << 30 });
fastifyDefault.post('/', async (req) => ({ n: req.body.inputs.x.data.length }));
await fastifyDefault.ready();

console.log('| numbers | body MB | JSON.parse | Fastify default parser (secure-json-parse) | gradserve parser (from the body bytes) | decode to Float32Array | inject: Fastify default | b64 decode (same tensor) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const n of [1e6, 1e7]) {
  const data = Array.from({ length: n }, (_, i) => Math.sin(i) * 1000);
  const text = JSON.stringify({ graph: { nodes: [] }, inputs: { x: { shape: [n], datatype: 'FP32', data } } });
  const mb = text.length / 1e6;
  const reps = n >= 1e7 ? 3 : 7;
  const raw = time(() => JSON.parse(text), reps);
  const def = time(() => sjson.parse(text, { protoAction: 'error', constructorAction: 'error' }), reps);
  const bytes = Buffer.from(text);
  const ours = time(() => parseJsonText(bytes), reps);
  const parsed = JSON.parse(text);
  const dec = time(() => decodeTensor(parsed.inputs.x, 'inputs.x'), reps);
  const inj = await timeAsync(() => fastifyDefault.inject({ method: 'POST', url: '/', headers: { 'content-type': 'application/json' }, payload: text }), reps);
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = data[i];
  const b64 = Buffer.from(f32.buffer).toString('base64');
  const b64ms = time(() => decodeTensor({ shape: [n], datatype: 'FP32', b64 }, 'inputs.x'), reps);
  const rate = (ms, bytes = text.length) => `${ms.toFixed(0)} ms (${(bytes / 1e6 / (ms / 1e3)).toFixed(0)} MB/s)`;
  console.log(`| ${n.toExponential(0)} | ${mb.toFixed(1)} | ${rate(raw)} | ${rate(def)} | ${rate(ours)} | ${dec.toFixed(0)} ms | ${rate(inj)} | ${rate(b64ms, b64.length)} |`);
}
await fastifyDefault.close();
