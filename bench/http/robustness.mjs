// Robustness under hostile and huge JSON bodies: starts the built server (dist/cli.js), sends one body at a time
// while polling the health endpoints, and prints per body the health latency (p50/p99/max), the body's answer,
// whether the server survived, and the server's RSS before, after and 10 s after the bodies.
//
//   node bench/http/robustness.mjs [--port 18181] [--only zeros,empty,json250,eight] [--settle 10] [-- <serve flags>]
//
// Bodies: `zeros`, a 256 MiB-class flat array of zeros (just under the default body limit; it killed the process
// when JSON.parse built it on the event loop); `empty`, 100 MB of nested empty arrays; `json250`, a valid 250 MB
// /v1/evaluate request whose input is ~25 M numbers written as JSON; `eight`, 8 concurrent valid /v1/evaluate
// requests of 16 MB of JSON each.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, stop } from './common.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const serveFlags = dash >= 0 ? argv.slice(dash + 1) : [];
const opts = dash >= 0 ? argv.slice(0, dash) : argv;
const opt = (name, dflt) => {
  const i = opts.indexOf(`--${name}`);
  return i >= 0 ? opts[i + 1] : dflt;
};
const port = Number(opt('port', '18181'));
const only = opt('only', 'zeros,empty,json250,eight').split(',');
const settleS = Number(opt('settle', '10'));
const MiB = 1024 * 1024;

const sumGraph = { inputs: { x: { datatype: 'FP32' } }, nodes: [{ name: 's', op: 'sum', inputs: ['x'] }], outputs: ['s'] };

/** `head` + `pattern` repeated to fill `size` bytes in all + `tail`; the repeat count is cut to whole patterns. */
function patterned(head, pattern, tail, size, trimLast = 0) {
  const h = Buffer.from(head);
  const t = Buffer.from(tail);
  const reps = Math.floor((size - h.length - t.length + trimLast) / pattern.length);
  const body = Buffer.allocUnsafe(h.length + reps * pattern.length - trimLast + t.length);
  h.copy(body, 0);
  body.fill(pattern, h.length, h.length + reps * pattern.length - trimLast);
  t.copy(body, body.length - t.length);
  return { body, reps };
}

const bodies = {
  zeros: () => {
    const head = `{"graph": ${JSON.stringify(sumGraph)}, "inputs": {"x": [`;
    const { body, reps } = patterned(head, '0,', '0]}}', 256 * MiB - 64);
    return { url: '/v1/evaluate', body, what: `256 MiB flat array of ${reps + 1} zeros` };
  },
  empty: () => {
    const head = `{"graph": ${JSON.stringify(sumGraph)}, "inputs": {"x": [`;
    const { body, reps } = patterned(head, '[],', '[]]}}', 100e6);
    return { url: '/v1/evaluate', body, what: `100 MB of ${reps + 1} nested empty arrays` };
  },
  json250: () => numbersBody(250e6),
  eight: () => {
    const one = numbersBody(16e6);
    return { ...one, count: 8, what: `8 concurrent ${one.what}` };
  },
};

/** A valid /v1/evaluate request of about `target` bytes: one input of numbers written as JSON. */
function numbersBody(target) {
  // 1000 distinct 10-byte numbers, repeated: JSON.parse does the same work as for all-distinct ones.
  let seed = 7;
  const nums = Array.from({ length: 1000 }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return (seed / 2147483648).toFixed(7);
  });
  const pattern = `${nums.join(',')},`;
  const reps = Math.floor(target / pattern.length);
  const n = reps * nums.length;
  const head = `{"graph": ${JSON.stringify(sumGraph)}, "inputs": {"x": {"shape": [${n}], "datatype": "FP32", "data": [`;
  const { body } = patterned(head, pattern, ']}}}', head.length + reps * pattern.length + 4 - 1, 1);
  return { url: '/v1/evaluate', body, what: `${(body.length / 1e6).toFixed(0)} MB JSON body of ${n} numbers (valid /v1/evaluate)` };
}

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

/** The process that serves: the child, or the one the CLI re-executed into (it does for another libuv pool size). */
function servingPid(pid) {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length === 1 ? Number(kids[0]) : pid;
  } catch {
    return pid;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function send(url, path, body) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length }, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, text: String(e) }));
    req.end(body);
  });
}

const healthAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function health(url, path) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get(`${url}${path}`, { agent: healthAgent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, ms: performance.now() - t0 }));
    });
    req.on('error', () => resolve({ ok: false, ms: performance.now() - t0 }));
  });
}

const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const server = start(join(root, 'dist', 'cli.js'), ['serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', ...serveFlags], port, '/v2/health/live');
await server.ready;
const pid = servingPid(server.child.pid);
// One small request first, so that first-use costs (schema compilation, the engine's first plan) are not measured.
const warm = await send(server.url, '/v1/evaluate', Buffer.from(JSON.stringify({ graph: sumGraph, inputs: { x: [1, 2, 3] } })));
if (warm.status !== 200) throw new Error(`warm-up request failed: ${warm.status} ${warm.text}`);
const rssStart = rssMiB(pid);
console.log(`server pid ${pid}, RSS ${rssStart} MiB at start`);

const rows = [];
for (const name of only) {
  const make = bodies[name];
  if (make === undefined) throw new Error(`unknown body ${name}`);
  const { url: path, body, what, count = 1 } = make();
  const rssBefore = rssMiB(pid);
  const lat = [];
  let failures = 0;
  let done = false;
  const poller = (async () => {
    let k = 0;
    while (!done) {
      const r = await health(server.url, k++ % 2 === 0 ? '/v2/health/live' : '/v2/health/ready');
      if (r.ok) lat.push(r.ms);
      else failures++;
      await new Promise((res) => setTimeout(res, 10));
    }
  })();
  const all = await Promise.all(Array.from({ length: count }, () => send(server.url, path, body)));
  const res = { status: [...new Set(all.map((r) => r.status))].join('/'), ms: Math.max(...all.map((r) => r.ms)), text: all[0].text };
  done = true;
  await poller;
  const after = await health(server.url, '/v2/health/live');
  const survived = alive(pid) && after.ok;
  let answer = res.text.slice(0, 160);
  try {
    const j = JSON.parse(res.text);
    answer = j.code !== undefined ? `${j.code}: ${j.detail}`.slice(0, 200) : JSON.stringify(j).slice(0, 120);
  } catch { /* not JSON */ }
  rows.push({ name, what, status: res.status, seconds: (res.ms / 1000).toFixed(1), answer, health: lat, failures, survived, rssBefore, rssAfter: rssMiB(pid) });
  const r = rows.at(-1);
  console.log(`\n${name}: ${what}`);
  console.log(`  answer: ${r.status} in ${r.seconds} s: ${r.answer}`);
  console.log(`  health during (${lat.length} polls, ${failures} failed): p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`);
  console.log(`  survived: ${survived ? 'yes' : 'NO'}; RSS ${r.rssBefore} MiB before, ${r.rssAfter} MiB after`);
  if (!survived) break;
}

await new Promise((r) => setTimeout(r, settleS * 1000));
const rssSettled = rssMiB(pid);
console.log(`\nRSS: ${rssStart} MiB at start, ${rows.at(-1)?.rssAfter} MiB after the last body, ${rssSettled} MiB ${settleS} s later`);
console.log(`server ${alive(pid) ? 'alive' : 'DEAD'} at the end`);
healthAgent.destroy();
if (alive(pid)) await stop(server);
