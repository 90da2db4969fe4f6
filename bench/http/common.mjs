// Shared by the HTTP benchmarks (run.mjs, compare.mjs): deterministic data, server start/stop, the requests they
// send (small /v1/grad, the batch-64 MLP, the seed-scale VJP) in every encoding (JSON, b64, binary framing), a lean
// keep-alive client, and what is read from /proc about the server (RSS, CPU time, collections from --trace-gc).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { median } from '../lib/measure.mjs';

export { median };

let seed = 11;
export const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
export const f32 = (n) => Float32Array.from({ length: n }, rand);
export const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

// ---- servers ---------------------------------------------------------------------------------------------------------

/** A TCP port nobody listens on right now (bound to port 0, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `node [nodeArgs] cmd ...args` and resolves `ready` once GET `probe` on 127.0.0.1:`port` answers 2xx.
 * `onLine` (optional) receives every line the child writes to stdout (e.g. `--trace-gc` output); without it stdout is
 * ignored.
 */
export function start(cmd, args, port, probe, { nodeArgs = [], onLine, env = {} } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, cmd, ...args], { stdio: ['ignore', onLine ? 'pipe' : 'ignore', 'inherit'], env: { ...process.env, ...env } });
  if (onLine) createInterface({ input: child.stdout }).on('line', onLine);
  const url = `http://127.0.0.1:${port}`;
  const ready = (async () => {
    for (let i = 0; i < 400; i++) {
      try {
        if ((await fetch(`${url}${probe}`)).ok) return;
      } catch { /* not up yet */ }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${cmd} did not come up`);
  })();
  return { child, url, ready };
}

export const stop = (s) => new Promise((r) => {
  if (s.child.exitCode !== null) return r();
  s.child.on('exit', r);
  s.child.kill('SIGTERM');
});

export const post = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });

/** The process that serves: the child itself, or the one it re-executed into (the CLI does for another pool size). */
export function servingPid(pid) {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length === 1 ? Number(kids[0]) : pid;
  } catch {
    return pid;
  }
}

/** Resident set size of a process in MB (Linux), NaN elsewhere. */
export function rssMB(pid) {
  try {
    return Number(/VmRSS:\s*(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds (user + system) a process has used so far (Linux), NaN elsewhere; with `tid`, one of its threads only
 * (the main thread, i.e. the event loop, has tid = pid).
 */
export function cpuSeconds(pid, tid) {
  try {
    const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * The server's own event-loop delay since the previous call (prom-client's default metrics on GET /metrics reset
 * their histogram at every scrape; its samples include the 10 ms sampling interval): {p50, p99, max} in ms, or
 * undefined when /metrics is not served.
 */
export async function eventLoopLag(url) {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const get = (k) => Number(new RegExp(`^nodejs_eventloop_lag_${k}_seconds (\\S+)`, 'm').exec(text)?.[1]) * 1000;
    const r = { p50: get('p50'), p99: get('p99'), max: get('max') };
    return Number.isFinite(r.max) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Collections reported by a server started with `node --trace-gc`: feed it the child's stdout lines; `count(t0, t1)`
 * gives the full (Mark-Compact) collections whose lines arrived between two performance.now() instants, with the
 * pause each one reported.
 */
export class GcTrace {
  constructor() {
    this.full = []; // {t, pauseMs, line}
    this.scavenges = 0;
  }

  onLine = (line) => {
    if (line.includes('Mark-Compact')) {
      const pause = /MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/.exec(line);
      this.full.push({ t: performance.now(), pauseMs: pause ? Number(pause[1]) : NaN, line });
    } else if (line.includes('Scavenge')) this.scavenges++;
  };

  count(t0, t1) {
    const xs = this.full.filter((g) => g.t >= t0 && g.t <= t1);
    const pauses = xs.map((g) => g.pauseMs).filter(Number.isFinite);
    return { n: xs.length, perSecond: xs.length / ((t1 - t0) / 1000), maxPauseMs: pauses.length ? Math.max(...pauses) : 0, lines: xs.map((g) => g.line) };
  }
}

// ---- requests in three encodings -------------------------------------------------------------------------------------

const ARRAYS = { FP32: Float32Array, FP64: Float64Array, INT32: Int32Array, INT64: BigInt64Array, BOOL: Uint8Array };

/** A tensor for buildRequest: shape, datatype and a typed array. */
export const t = (datatype, shape, data) => ({ datatype, shape, data });

/**
 * One request body, ready to write: `fields` (graph, of, wrt, ...) plus tensor maps (`tensors`: {inputs: {x: t(..)},
 * cotangents: {...}}) written as
 *  - `json`: `data` arrays of numbers, JSON answer;
 *  - `b64`: base64 strings, `"encoding": "b64"` answer;
 *  - `binary`: binary framing (API.md "Binary framing"): a JSON header padded to 8 bytes, then the tensors' own bytes
 *    (the parts are views of the typed arrays: nothing is copied), `"encoding": "binary"` answer.
 * Returns {headers, parts (Buffers to write in order), bytes (total length)}.
 */
export function buildRequest(fields, tensors, encoding) {
  const json = { ...fields };
  const blobs = [];
  let offset = 0;
  for (const [group, map] of Object.entries(tensors)) {
    json[group] = {};
    for (const [name, x] of Object.entries(map)) {
      const head = { shape: x.shape, datatype: x.datatype };
      if (encoding === 'json') head.data = typeof x.data[0] === 'bigint' ? Array.from(x.data, Number) : Array.from(x.data);
      else if (encoding === 'b64') head.b64 = b64(x.data);
      else {
        head.binary_data_size = x.data.byteLength;
        head.binary_data_offset = offset;
        offset += x.data.byteLength;
        blobs.push(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
      }
      json[group][name] = head;
    }
  }
  if (encoding !== 'json') json.encoding = encoding;
  if (encoding !== 'binary') {
    const body = Buffer.from(JSON.stringify(json));
    return { headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, parts: [body], bytes: body.length };
  }
  const text = JSON.stringify(json);
  const head = Buffer.from(text.padEnd(text.length + ((8 - (Buffer.byteLength(text) % 8)) % 8)));
  const bytes = head.length + offset;
  return {
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length), 'content-length': String(bytes) },
    parts: [head, ...blobs],
    bytes,
  };
}

/** A typed array over `bytes` (a view when aligned, else a copy). */
function typed(datatype, bytes) {
  const A = ARRAYS[datatype];
  if (bytes.byteOffset % A.BYTES_PER_ELEMENT === 0) return new A(bytes.buffer, bytes.byteOffset, bytes.byteLength / A.BYTES_PER_ELEMENT);
  return new A(new Uint8Array(bytes).buffer);
}

/**
 * An answer's tensors as typed arrays, whatever its encoding: {group: {name: {shape, datatype, data}}} for the
 * tensor maps in `groups` (e.g. ['outputs', 'gradients']). Framed answers give views of the body (the server aligns
 * blobs to 64 bytes), b64 is decoded, JSON numbers are converted.
 */
export function decodeAnswer(headers, body, groups) {
  let json;
  let section;
  const hl = headers['inference-header-content-length'];
  if (hl !== undefined) {
    const n = Number(hl);
    json = JSON.parse(body.toString('utf8', 0, n));
    section = body.subarray(n);
  } else json = JSON.parse(body.toString('utf8'));
  const out = {};
  for (const g of groups) {
    out[g] = {};
    for (const [name, w] of Object.entries(json[g] ?? {})) {
      let data;
      if (w.binary_data_size !== undefined) data = typed(w.datatype, section.subarray(w.binary_data_offset ?? 0, (w.binary_data_offset ?? 0) + w.binary_data_size));
      else if (w.b64 !== undefined) data = typed(w.datatype, Buffer.from(w.b64, 'base64'));
      else {
        const flat = Array.isArray(w.data) ? w.data.flat(Infinity) : [w.data];
        data = ARRAYS[w.datatype] === BigInt64Array ? BigInt64Array.from(flat, BigInt) : ARRAYS[w.datatype].from(flat, Number);
      }
      out[g][name] = { shape: w.shape, datatype: w.datatype, data };
    }
  }
  return out;
}

/**
 * A lean client: node:http over one keep-alive connection (no fetch), the request written as its parts (corked, no
 * concatenation), the answer collected into one Buffer of its content length.
 */
export class LeanClient {
  constructor(url, sockets = 1) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** Resolves {status, headers, body}; rejects on a network error. `req` is a buildRequest result, or none (GET). */
  request(path, req) {
    return new Promise((resolve, reject) => {
      const r = http.request({ host: this.host, port: this.port, path, method: req ? 'POST' : 'GET', agent: this.agent, headers: req?.headers ?? {} }, (res) => {
        const len = Number(res.headers['content-length']);
        const chunks = [];
        let body = Number.isSafeInteger(len) ? Buffer.allocUnsafe(len) : undefined;
        let at = 0;
        res.on('data', (c) => {
          if (body !== undefined && at + c.length <= body.length) c.copy(body, at);
          else chunks.push(c);
          at += c.length;
        });
        res.on('end', () => {
          if (body === undefined || chunks.length > 0) body = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      if (req) {
        r.cork();
        for (const p of req.parts) r.write(p);
        r.uncork();
      }
      r.end();
    });
  }

  /** POST and decode; throws on a non-200 answer, and on an unframed answer to a framed request. */
  async call(path, req, groups) {
    const res = await this.request(path, req);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body.toString('utf8', 0, 300)}`);
    const framed = res.headers['inference-header-content-length'] !== undefined;
    if (req.headers['inference-header-content-length'] !== undefined && !framed) throw new Error(`${path}: a framed request got an unframed answer`);
    return { answer: decodeAnswer(res.headers, res.body, groups), bytes: res.body.length, framed };
  }

  close() {
    this.agent.destroy();
  }
}

// ---- workloads ---------------------------------------------------------------------------------------------------------

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

/**
 * MLP 784-256-10 at batch 64, softmax cross entropy, gradients of w1 and w2 (no biases): the /v1/grad request of
 * the HTTP targets. bench/engine/torch_peer.py computes the same step with `64 784 256 10 <threads> nobias`.
 */
export const MLP = { B: 64, D: 784, H: 256, C: 10 };
export const mlpGraph = {
  inputs: { x: { shape: [64, 784], datatype: 'FP32' }, w1: { shape: [784, 256], datatype: 'FP32' }, w2: { shape: [256, 10], datatype: 'FP32' }, labels: { shape: [64], datatype: 'INT32' } },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w1'] },
    { name: 'a', op: 'relu', inputs: ['h'] },
    { name: 'logits', op: 'matmul', inputs: ['a', 'w2'] },
    { name: 'loss', op: 'softmax_cross_entropy', inputs: ['logits', 'labels'] },
  ],
  outputs: ['loss'],
};
export function mlpTensors() {
  return {
    inputs: {
      x: t('FP32', [64, 784], f32(64 * 784)),
      w1: t('FP32', [784, 256], f32(784 * 256)),
      w2: t('FP32', [256, 10], f32(2560)),
      labels: t('INT32', [64], Int32Array.from({ length: 64 }, (_, i) => i % 10)),
    },
  };
}
export const mlpFields = { graph: mlpGraph, of: 'loss', wrt: ['w1', 'w2'] };
/** The MLP request for `encoding` (json | b64 | binary), from typed arrays. */
export const mlpRequest = (tensors, encoding) => buildRequest(mlpFields, tensors, encoding);
/** The MLP request as b64 JSON text (compare.mjs). */
export const mlpBody = () => mlpRequest(mlpTensors(), 'b64').parts[0].toString();

/** The seed's linear layer at scale: y = x·w, x[64,4096], w[4096,4096] FP32, VJP for a cotangent dy[64,4096], wrt x, w. */
export const SEED = { N: 64, D: 4096, M: 4096 };
export const seedGraph = { inputs: { x: { shape: [64, 4096], datatype: 'FP32' }, w: { shape: [4096, 4096], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] };
export function seedTensors() {
  const { N, D, M } = SEED;
  return { inputs: { x: t('FP32', [N, D], f32(N * D)), w: t('FP32', [D, M], f32(D * M)) }, cotangents: { y: t('FP32', [N, M], f32(N * M)) } };
}
export const seedFields = { graph: seedGraph, wrt: ['x', 'w'] };
export const seedRequest = (tensors, encoding) => buildRequest(seedFields, tensors, encoding);
