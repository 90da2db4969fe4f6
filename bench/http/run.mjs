#!/usr/bin/env node
/**
 * HTTP benchmark, loopback, bounded (every phase has a fixed duration or repetition count). Starts the server
 * (`node --trace-gc dist/cli.js serve` on a free port) and measures, with a lean keep-alive node:http client (request
 * written from the typed arrays, answer decoded back into typed arrays: both inside the timed span) and with the
 * project's TypeScript client (dist/client, fetch, binary framing by default for large tensors):
 *
 *  vjp     seed-scale VJP (x[64,4096], w[4096,4096] FP32, cotangent [64,4096], wrt x and w) end to end, b64 vs binary
 *          both ways: p50, p99, GB/s (request + answer bytes / p50), against PyTorch in-process at 1 and 2 threads;
 *  mlp     MLP 784-256-10 batch 64 /v1/grad on one keep-alive connection, JSON vs b64 vs binary: p50, p99, p99/p50,
 *          server CPU per request and full collections per second on the server, against PyTorch in-process;
 *  scale   one vs two concurrent clients on the binary MLP request: throughput ratio;
 *  health  GET /v2/health/live p50/p99 (from a separate process) while 8 heavy requests are in flight: seed-scale
 *          VJPs in binary, the same bytes exchanged with the floor server (GETs to it), and chains of 1024x1024
 *          matmuls;
 *  rss     a fresh server: RSS warm, during and after a soak at concurrency 8 (MLP, half b64 half binary), and after
 *          idling; full collections per second during the soak.
 * Every phase but rss also measures the transport's floor: the same client sending the same bytes to a bare node:http
 * server in its own process that computes nothing and answers as many bytes as gradserve does (floor-server.mjs):
 * what any server in Node on this machine pays before it does any work.
 * Opt-in older phases: hello (small /v1/grad vs a bare Fastify route, autocannon), overhead (sequential round trip
 * minus in-process engine.grad), large (a 4 Mi FP32 tensor through /v1/evaluate as JSON, b64 and binary).
 *
 *   npm run build:ts && node bench/http/run.mjs [--phases vjp,mlp,scale,health,rss] [--rounds 4] [--mlp-reps 600] [--sustain-reps 500]
 *     [--vjp-reps 8] [--scale-seconds 4] [--health-seconds 6] [--heavy vjp,floor,chain] [--soak-seconds 30]
 *     [--after-seconds 10] [--quick] [-- <server flags>]
 *
 * PyTorch (`PYTHON`, default /usr/bin/python3) runs in one process per thread setting (bench/lib/measure.mjs) and is
 * measured in the same interleaved rounds as the HTTP requests; the faster setting is the reference and is named.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  argOf, bestOf, flag, interleave, loadNow, ms, printMachine, printTargets, quantile, ratio, sleep, summary, TORCH_THREADS, torchPeer,
} from '../lib/measure.mjs';
import {
  buildRequest, cpuSeconds, eventLoopLag, f32, freePort, GcTrace, LeanClient, MLP, mlpFields, mlpRequest, mlpTensors, post, rssMB,
  SEED, seedFields, seedRequest, seedTensors, servingPid, smallBody, smallGraph, smallInputs, start, stop,
} from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const serverFlags = dash >= 0 ? argv.slice(dash + 1) : [];
const quick = flag('quick');
const phases = new Set(String(argOf('phases', 'vjp,mlp,scale,health,rss')).split(','));
const rounds = argOf('rounds', quick ? 2 : 4);
const mlpReps = argOf('mlp-reps', quick ? 200 : 600);
const sustainReps = argOf('sustain-reps', quick ? 200 : 500);
const vjpReps = argOf('vjp-reps', quick ? 4 : 8);
const scaleSeconds = argOf('scale-seconds', quick ? 2 : 4);
const healthSeconds = argOf('health-seconds', quick ? 4 : 6);
const heavyKinds = String(argOf('heavy', 'vjp,floor,chain')).split(',');
const soakSeconds = argOf('soak-seconds', quick ? 10 : 30);
const afterSeconds = argOf('after-seconds', 10);
const duration = argOf('duration', quick ? 3 : 8); // autocannon phases (hello)

const m = printMachine();
console.log(`command: node bench/http/run.mjs ${argv.join(' ')}`.trim());
const table = [];
const { GradserveClient } = await import(join(root, 'dist', 'client', 'index.js'));
const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
/** The same computation in this process through the library API (no HTTP), for where the time goes. */
const inProcess = (tensors) => Object.fromEntries(Object.entries(tensors).map(([g, map]) => [g, Object.fromEntries(Object.entries(map).map(([k, x]) => [k, tensor(x.datatype, x.shape, x.data)]))]));

/** Starts `gradserve serve` with --trace-gc on a free port; collections are counted from its stdout. */
async function server() {
  const port = await freePort();
  const gc = new GcTrace();
  const s = start(join(root, 'dist', 'cli.js'), ['serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'silent', ...serverFlags], port, '/v2/health/ready', { nodeArgs: ['--trace-gc'], onLine: gc.onLine });
  await s.ready;
  s.pid = servingPid(s.child.pid);
  s.gc = gc;
  return s;
}

/**
 * An HTTP variant as an interleavable peer: `fn()` makes one request (resolving {bytes} of request + answer); `warm`
 * unmeasured calls start each segment. Records the segments' time windows (for counting collections) and the
 * server's CPU time over them.
 */
function httpPeer(label, srv, fn, { warm = 2, reps } = {}) {
  /** Server CPU per request over this peer's segments: all threads, and the event loop's. */
  const cpuText = () => `server CPU ${ms((p.cpu / p.count) * 1e3)} ms/req (event loop ${ms((p.loopCpu / p.count) * 1e3)})`;
  const p = {
    cpuText,
    label, reps, windows: [], cpu: 0, loopCpu: 0, count: 0, bytes: 0,
    async run(n) {
      for (let i = 0; i < warm; i++) await fn();
      const c0 = cpuSeconds(srv.pid);
      const l0 = cpuSeconds(srv.pid, srv.pid);
      const w0 = performance.now();
      const times = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const r = await fn();
        times.push(performance.now() - t0);
        if (r?.bytes) p.bytes = r.bytes;
      }
      p.windows.push([w0, performance.now()]);
      p.cpu += cpuSeconds(srv.pid) - c0;
      p.loopCpu += cpuSeconds(srv.pid, srv.pid) - l0;
      p.count += n;
      return times;
    },
    /** Full collections per second of the server over this peer's segments. */
    gcPerSecond() {
      let n = 0;
      let span = 0;
      let maxPause = 0;
      for (const [a, b] of p.windows) {
        const c = srv.gc.count(a, b);
        n += c.n;
        span += b - a;
        maxPause = Math.max(maxPause, c.maxPauseMs);
      }
      return { n, perSecond: n / (span / 1000), maxPause };
    },
  };
  return p;
}

const line = (label, s, extra = '') => console.log(`  ${label.padEnd(44)} p50 ${ms(s.p50).padStart(7)}  p99 ${ms(s.p99).padStart(7)}  (n ${s.n})${extra}`);
const torchLabel = (r) => r.label.replace('PyTorch ', '');

/** Runs bench/http/probe.mjs for `seconds`; resolves with its latencies. */
function probe(url, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'probe.mjs'), `${url}/v2/health/live`, String(seconds), '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out).times) : reject(new Error(`probe exited with ${code}`))));
  });
}

let srv;
if (['vjp', 'mlp', 'scale', 'health', 'hello', 'overhead', 'large'].some((p) => phases.has(p))) srv = await server();
/** The floor: bench/http/floor-server.mjs (nothing computed, the same bytes each way). */
let floor;
if (['vjp', 'mlp', 'scale', 'health'].some((p) => phases.has(p))) {
  const port = await freePort();
  floor = start(join(here, 'floor-server.mjs'), [String(port)], port, '/');
  await floor.ready;
  floor.pid = floor.child.pid;
}
/** `req` for the floor server, asking for an answer of `answerBytes` (what gradserve answered to it). */
const toFloor = (req, answerBytes) => ({ ...req, headers: { ...req.headers, 'x-answer-bytes': String(answerBytes) } });
const FLOOR = 'bare node:http, same bytes, no compute (floor)';
/**
 * The floor as an interleavable peer (httpPeer): `req` sent to the floor server, which answers as many bytes as
 * gradserve answered it (one call through `client` finds out how many). `close()` ends its connection.
 */
async function floorPeerFor(client, path, req, groups, opts) {
  const answerBytes = (await client.call(path, req, groups)).bytes;
  const floorClient = new LeanClient(floor.url);
  const floorReq = toFloor(req, answerBytes);
  const peer = httpPeer(FLOOR, floor, async () => {
    const r = await floorClient.request('/', floorReq);
    return { bytes: floorReq.bytes + r.body.length };
  }, opts);
  peer.close = () => floorClient.close();
  return peer;
}

// ---- vjp: seed-scale VJP, b64 vs binary, vs PyTorch ---------------------------------------------------------------------

if (phases.has('vjp')) {
  const { N, D, M } = SEED;
  const tensors = seedTensors();
  const client = new LeanClient(srv.url);
  const ts = new GradserveClient({ baseUrl: srv.url });
  const groups = ['outputs', 'gradients'];
  const lean = (enc) => async () => {
    const req = seedRequest(tensors, enc);
    const r = await client.call('/v1/vjp', req, groups);
    return { bytes: req.bytes + r.bytes };
  };
  const peers = [
    httpPeer('lean client, b64 both ways', srv, lean('b64'), { warm: 1, reps: Math.max(2, Math.ceil(vjpReps * 0.75)) }),
    httpPeer('lean client, binary both ways', srv, lean('binary'), { warm: 1, reps: vjpReps }),
    httpPeer('TS client (dist/client), binary default', srv, async () => { await ts.vjp({ ...seedFields, inputs: tensors.inputs, cotangents: tensors.cotangents }); }, { warm: 1, reps: vjpReps }),
  ];
  const floorPeer = await floorPeerFor(client, '/v1/vjp', seedRequest(tensors, 'binary'), groups, { warm: 1, reps: vjpReps });
  const local = inProcess(tensors);
  const engineVjp = httpPeer('in-process engine.vjp (no HTTP)', srv, () => engine.vjp(seedFields.graph, local.inputs, local.cotangents, seedFields.wrt), { warm: 1, reps: vjpReps });
  const torch = TORCH_THREADS.map((t) => torchPeer(join(here, 'torch_vjp.py'), [N, D, M, t, '--serve'], t));
  await Promise.all(torch.map((p) => p.ready()));
  for (const p of torch) p.reps = vjpReps;
  const res = await interleave([...peers, floorPeer, engineVjp, ...torch], vjpReps, Math.min(rounds, 2));
  await Promise.all(torch.map((p) => p.close()));
  client.close();
  floorPeer.close();
  const { best, rows } = bestOf(new Map(torch.map((p) => [p.label, res.get(p.label)])));
  console.log(`\n## vjp: seed-scale VJP x[${N},${D}] w[${D},${M}] FP32, wrt x and w, end to end (ms; load ${loadNow()})`);
  const s = {};
  for (const p of peers) {
    s[p.label] = summary(res.get(p.label));
    const gbs = p.bytes ? `  ${(p.bytes / 1e6).toFixed(0)} MB on the wire, ${(p.bytes / 1e9 / (s[p.label].p50 / 1e3)).toFixed(2)} GB/s at p50` : '';
    line(p.label, s[p.label], `${gbs}  ${p.cpuText()}`);
  }
  const fl = summary(res.get(FLOOR));
  line(FLOOR, fl, `  ${(floorPeer.bytes / 1e6).toFixed(0)} MB on the wire, ${(floorPeer.bytes / 1e9 / (fl.p50 / 1e3)).toFixed(2)} GB/s at p50`);
  const ev = summary(res.get(engineVjp.label));
  line(engineVjp.label, ev);
  for (const r of rows) line(`PyTorch ${torch[0].info.version} in-process, ${torchLabel(r)}`, r, r === best ? '  <- faster setting' : '');
  const bin = s['lean client, binary both ways'];
  const b64s = s['lean client, b64 both ways'];
  const tsS = s['TS client (dist/client), binary default'];
  console.log(`  binary / PyTorch best: p50 ${ratio(bin.p50 / best.p50)}, p99 ${ratio(bin.p99 / best.p99)}; b64 / binary p50 ${ratio(b64s.p50 / bin.p50)}`);
  table.push({ what: `vjp: binary p50 / PyTorch best p50 (${torchLabel(best)})`, value: `${ms(bin.p50)} / ${ms(best.p50)} ms = ${ratio(bin.p50 / best.p50)}`, target: '<= 1.25x', met: bin.p50 / best.p50 <= 1.25 });
  table.push({ what: 'vjp: floor (bare node:http, same bytes, no compute) p50 / PyTorch best p50', value: `${ms(fl.p50)} / ${ms(best.p50)} ms = ${ratio(fl.p50 / best.p50)}` });
  table.push({ what: 'vjp: binary p99 / PyTorch best p99', value: `${ms(bin.p99)} / ${ms(best.p99)} ms = ${ratio(bin.p99 / best.p99)} (n ${bin.n})` });
  table.push({ what: 'vjp: b64 p50 / PyTorch best p50', value: `${ms(b64s.p50)} / ${ms(best.p50)} ms = ${ratio(b64s.p50 / best.p50)}` });
  table.push({ what: 'vjp: TS client (binary) p50 / PyTorch best p50', value: `${ms(tsS.p50)} / ${ms(best.p50)} ms = ${ratio(tsS.p50 / best.p50)}` });
  table.push({ what: 'vjp: in-process engine.vjp p50 / PyTorch best p50', value: `${ms(ev.p50)} / ${ms(best.p50)} ms = ${ratio(ev.p50 / best.p50)}` });
  const [pb, pbin] = [peers[0], peers[1]];
  table.push({ what: 'vjp: GB/s at p50, b64 / binary', value: `${(pb.bytes / 1e9 / (b64s.p50 / 1e3)).toFixed(2)} / ${(pbin.bytes / 1e9 / (bin.p50 / 1e3)).toFixed(2)}` });
}

// ---- mlp: batch-64 MLP /v1/grad, JSON vs b64 vs binary, vs PyTorch ------------------------------------------------------

if (phases.has('mlp')) {
  const { B, D, H, C } = MLP;
  const tensors = mlpTensors();
  const client = new LeanClient(srv.url);
  const ts = new GradserveClient({ baseUrl: srv.url });
  const groups = ['outputs', 'gradients'];
  const lean = (enc) => async () => {
    const req = mlpRequest(tensors, enc);
    const r = await client.call('/v1/grad', req, groups);
    return { bytes: req.bytes + r.bytes };
  };
  // The three encodings answer the same gradients (a check of the client code, not a benchmark).
  const answers = {};
  for (const enc of ['json', 'b64', 'binary']) answers[enc] = (await client.call('/v1/grad', mlpRequest(tensors, enc), groups)).answer.gradients.w1.data;
  for (const enc of ['json', 'b64']) {
    const d = answers[enc].reduce((mx, v, i) => Math.max(mx, Math.abs(v - answers.binary[i])), 0);
    if (!(d <= 1e-6)) throw new Error(`gradients of w1 differ between ${enc} and binary by ${d}`);
  }
  const peers = [
    httpPeer('lean client, JSON', srv, lean('json'), { reps: Math.max(rounds, Math.ceil(mlpReps / 20)) }),
    httpPeer('lean client, b64', srv, lean('b64')),
    httpPeer('lean client, binary', srv, lean('binary')),
    httpPeer('TS client (dist/client), binary default', srv, async () => { await ts.grad({ ...mlpFields, inputs: tensors.inputs }); }),
  ];
  const floorPeer = await floorPeerFor(client, '/v1/grad', mlpRequest(tensors, 'binary'), groups);
  const local = inProcess(tensors);
  const engineGrad = httpPeer('in-process engine.grad (no HTTP)', srv, () => engine.grad(mlpFields.graph, local.inputs, mlpFields.of, mlpFields.wrt));
  const torch = TORCH_THREADS.map((t) => torchPeer(join(root, 'bench', 'engine', 'torch_peer.py'), [B, D, H, C, t, 'nobias', '--serve'], t));
  await Promise.all(torch.map((p) => p.ready()));
  const res = await interleave([...peers, floorPeer, engineGrad, ...torch], mlpReps, rounds);
  await Promise.all(torch.map((p) => p.close()));
  client.close();
  floorPeer.close();
  const { best, rows } = bestOf(new Map(torch.map((p) => [p.label, res.get(p.label)])));
  console.log(`\n## mlp: MLP ${D}-${H}-${C} batch ${B} /v1/grad (wrt w1, w2), one keep-alive connection (ms; load ${loadNow()})`);
  const s = {};
  for (const p of peers) {
    s[p.label] = summary(res.get(p.label));
    const g = p.gcPerSecond();
    line(p.label, s[p.label], `  p99/p50 ${ratio(s[p.label].p99 / s[p.label].p50)}  ${p.cpuText()}  full GCs ${g.perSecond.toFixed(2)}/s (${g.n}, longest ${ms(g.maxPause)} ms)${p.bytes ? `  ${(p.bytes / 1e6).toFixed(2)} MB/req` : ''}`);
  }
  const fl = summary(res.get(FLOOR));
  line(FLOOR, fl, `  p99/p50 ${ratio(fl.p99 / fl.p50)}  ${(floorPeer.bytes / 1e6).toFixed(2)} MB/req`);
  const eg = summary(res.get(engineGrad.label));
  line(engineGrad.label, eg);
  for (const r of rows) line(`PyTorch ${torch[0].info.version} in-process, ${torchLabel(r)}`, r, r === best ? '  <- faster setting' : '');
  // Full collections under a sustained load of one encoding alone: in the rounds above, the garbage of one encoding's
  // turn (JSON's ~10 MB a request) is collected during the next peer's turn and counted against it. After a pause,
  // `sustain` requests of one encoding back to back, as a client that only sends that encoding would.
  const sustained = {};
  for (const enc of ['b64', 'binary']) {
    await sleep(2000);
    const p = httpPeer(`lean client, ${enc}, sustained alone`, srv, lean(enc), { warm: 20 });
    const x = summary(await p.run(sustainReps));
    const g = p.gcPerSecond();
    sustained[enc] = { ...x, gc: g };
    line(p.label, x, `  p99/p50 ${ratio(x.p99 / x.p50)}  full GCs ${g.perSecond.toFixed(2)}/s (${g.n}, longest ${ms(g.maxPause)} ms)`);
  }
  const bin = s['lean client, binary'];
  console.log(`  binary / PyTorch best: p50 ${ratio(bin.p50 / best.p50)}; binary p99/p50 ${ratio(bin.p99 / bin.p50)}`);
  table.push({ what: `mlp: binary p50 / PyTorch best p50 (${torchLabel(best)})`, value: `${ms(bin.p50)} / ${ms(best.p50)} ms = ${ratio(bin.p50 / best.p50)}`, target: '<= 2.0x', met: bin.p50 / best.p50 <= 2 });
  table.push({ what: 'mlp: floor (bare node:http, same bytes, no compute) p50 / PyTorch best p50; p99/p50', value: `${ms(fl.p50)} / ${ms(best.p50)} ms = ${ratio(fl.p50 / best.p50)}; ${ratio(fl.p99 / fl.p50)}` });
  table.push({ what: 'mlp: binary p99 / binary p50', value: `${ms(bin.p99)} / ${ms(bin.p50)} ms = ${ratio(bin.p99 / bin.p50)}`, target: '<= 2.0x', met: bin.p99 / bin.p50 <= 2 });
  for (const [label, short] of [['lean client, b64', 'b64'], ['lean client, JSON', 'JSON'], ['TS client (dist/client), binary default', 'TS client (binary)']]) {
    const x = s[label];
    table.push({ what: `mlp: ${short} p50 / PyTorch best p50; p99/p50`, value: `${ms(x.p50)} / ${ms(best.p50)} ms = ${ratio(x.p50 / best.p50)}; ${ratio(x.p99 / x.p50)}` });
  }
  table.push({ what: 'mlp: in-process engine.grad p50 / PyTorch best p50', value: `${ms(eg.p50)} / ${ms(best.p50)} ms = ${ratio(eg.p50 / best.p50)}` });
  const gcs = Object.entries(sustained).map(([enc, x]) => `${enc} ${x.gc.perSecond.toFixed(2)}/s (${x.gc.n} in ${sustainReps} requests)`).join(', ');
  const worst = Math.max(...Object.values(sustained).map((x) => x.gc.perSecond));
  table.push({ what: 'mlp: server full GCs (Mark-Compact) per second, one client sending one encoding', value: gcs, target: 'rare (<= 1/s; ~10/s before)', met: worst <= 1 });
  const sb = sustained.binary;
  table.push({ what: 'mlp: binary sustained alone, p50 / PyTorch best p50; p99/p50', value: `${ms(sb.p50)} / ${ms(best.p50)} ms = ${ratio(sb.p50 / best.p50)}; ${ratio(sb.p99 / sb.p50)}` });
}

// ---- scale: one vs two clients on the binary MLP request ----------------------------------------------------------------

if (phases.has('scale')) {
  const tensors = mlpTensors();
  const req = mlpRequest(tensors, 'binary');
  const clients = [new LeanClient(srv.url), new LeanClient(srv.url)];
  const answerBytes = (await clients[0].call('/v1/grad', req, ['outputs', 'gradients'])).bytes;
  const floorReq = toFloor(req, answerBytes);
  const floorClients = [new LeanClient(floor.url), new LeanClient(floor.url)];
  // gradserve's request and the floor's (the same bytes to the bare server), in alternating segments
  const targets = [
    { name: 'gradserve', clients, one: (c) => c.call('/v1/grad', req, ['outputs', 'gradients']), totals: { 1: { n: 0, ms: 0 }, 2: { n: 0, ms: 0 } } },
    { name: 'floor', clients: floorClients, one: (c) => c.request('/', floorReq), totals: { 1: { n: 0, ms: 0 }, 2: { n: 0, ms: 0 } } },
  ];
  for (const t of targets) for (const c of t.clients) for (let i = 0; i < 20; i++) await t.one(c);
  for (const k of [1, 2, 2, 1]) {
    for (const t of targets) {
      const end = performance.now() + scaleSeconds * 1000;
      const t0 = performance.now();
      let n = 0;
      await Promise.all(t.clients.slice(0, k).map(async (c) => {
        while (performance.now() < end) {
          await t.one(c);
          n++;
        }
      }));
      t.totals[k].n += n;
      t.totals[k].ms += performance.now() - t0;
      await sleep(150);
    }
  }
  for (const c of [...clients, ...floorClients]) c.close();
  const rps = (t, k) => t.totals[k].n / (t.totals[k].ms / 1000);
  const [g, f] = targets;
  console.log(`\n## scale: MLP batch 64 binary, 1 vs 2 concurrent clients (rounds 1,2,2,1 of ${scaleSeconds} s, each for gradserve then the floor; load ${loadNow()})`);
  console.log(`  gradserve: 1 client ${rps(g, 1).toFixed(0)} req/s; 2 clients ${rps(g, 2).toFixed(0)} req/s; ratio ${ratio(rps(g, 2) / rps(g, 1))}`);
  console.log(`  ${FLOOR}: 1 client ${rps(f, 1).toFixed(0)} req/s; 2 clients ${rps(f, 2).toFixed(0)} req/s; ratio ${ratio(rps(f, 2) / rps(f, 1))}`);
  table.push({ what: 'scale: 2 clients / 1 client throughput (MLP, binary)', value: `${rps(g, 2).toFixed(0)} / ${rps(g, 1).toFixed(0)} req/s = ${ratio(rps(g, 2) / rps(g, 1))}`, target: '>= 1.7x', met: rps(g, 2) / rps(g, 1) >= 1.7 });
  table.push({ what: 'scale: floor (bare node:http, same bytes, no compute), 2 clients / 1 client', value: `${rps(f, 2).toFixed(0)} / ${rps(f, 1).toFixed(0)} req/s = ${ratio(rps(f, 2) / rps(f, 1))}` });
}

// ---- health: /v2/health/live while 8 heavy requests are in flight ---------------------------------------------------------

if (phases.has('health')) {
  console.log(`\n## health: GET /v2/health/live every 10 ms from a separate process (ms; load ${loadNow()})`);
  await eventLoopLag(srv.url);
  const idle = summary(await probe(srv.url, 2));
  const idleLag = await eventLoopLag(srv.url);
  line('idle server', idle, idleLag ? `  server event-loop delay p99 ${ms(idleLag.p99)}, max ${ms(idleLag.max)} ms` : '');
  const seed = seedTensors();
  const n = 1024;
  const chain = {
    graph: { inputs: { s: { shape: [], datatype: 'FP32' } }, nodes: [{ name: 'a', op: 'broadcast_to', inputs: ['s'], attrs: { shape: [n, n] } }, { name: 'b', op: 'matmul', inputs: ['a', 'a'] }, { name: 'c', op: 'matmul', inputs: ['b', 'a'] }, { name: 'd', op: 'matmul', inputs: ['c', 'a'] }, { name: 'f', op: 'sum', inputs: ['d'] }], outputs: ['f'] },
  };
  const seedReq = seedRequest(seed, 'binary');
  let seedAnswer = 0;
  if (heavyKinds.includes('floor')) {
    const c = new LeanClient(srv.url);
    seedAnswer = (await c.call('/v1/vjp', seedReq, ['outputs', 'gradients'])).bytes;
    c.close();
  }
  const heavy = {
    vjp: { label: 'seed-scale VJPs in binary', call: (c) => c.call('/v1/vjp', seedReq, ['outputs', 'gradients']) },
    floor: { label: `seed-scale exchanges with the ${FLOOR}`, server: floor, call: (c) => c.request('/', toFloor(seedReq, seedAnswer)) },
    chain: { label: 'chains of three 1024x1024 matmuls', call: (c) => c.call('/v1/evaluate', buildRequest(chain, { inputs: { s: { shape: [], datatype: 'FP32', data: new Float32Array([1e-3]) } } }, 'json'), ['outputs']) },
  };
  for (const kind of heavyKinds) {
    const h = heavy[kind];
    const target = h.server ?? srv;
    const client = new LeanClient(target.url, 8);
    let running = true;
    let done = 0;
    const loops = Array.from({ length: 8 }, async () => {
      while (running) {
        await h.call(client);
        done++;
      }
    });
    await sleep(1000); // all 8 in flight
    await eventLoopLag(target.url); // resets the server's histogram
    const t0 = performance.now();
    const lat = summary(await probe(target.url, healthSeconds));
    const wall = performance.now() - t0;
    const lag = await eventLoopLag(target.url);
    const during = done;
    running = false;
    await Promise.all(loops);
    client.close();
    const lagText = lag ? `; server event-loop delay p99 ${ms(lag.p99)}, max ${ms(lag.max)} ms (incl. its 10 ms sampling)` : '';
    line(`8 in flight: ${h.label}`, lat, `  max ${ms(lat.max)}  (${during} heavy requests done, ${(during / (wall / 1000)).toFixed(1)}/s${lagText})`);
    const value = `${ms(lat.p99)} ms (p50 ${ms(lat.p50)}, max ${ms(lat.max)}, n ${lat.n}${lag ? `; server event-loop delay max ${ms(lag.max)} ms` : ''})`;
    if (h.server) table.push({ what: `health: floor, p99 of a GET with 8 ${h.label} in flight`, value });
    else table.push({ what: `health: p99 with 8 ${h.label} in flight`, value, target: '< 20 ms', met: lat.p99 < 20 });
  }
  table.push({ what: 'health: p99 idle', value: `${ms(idle.p99)} ms (p50 ${ms(idle.p50)})` });
}

// ---- optional older phases ----------------------------------------------------------------------------------------------

if (phases.has('hello') || phases.has('overhead')) {
  const hport = await freePort();
  const hello = start(join(here, 'hello.mjs'), [String(hport)], hport, '/hello');
  await hello.ready;
  if (phases.has('hello')) {
    const { default: autocannon } = await import('autocannon');
    const cannon = (opts) => new Promise((resolve, reject) => {
      autocannon({ duration, connections: 10, pipelining: 1, ...opts }, (err, res) => (err ? reject(err) : resolve(res)));
    });
    const fmt = (r) => `${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`;
    await cannon({ url: `${hello.url}/hello`, duration: 1 });
    await cannon({ url: `${srv.url}/v1/grad`, duration: 1, ...post(smallBody) });
    const rHello = await cannon({ url: `${hello.url}/hello` });
    const rGrad = await cannon({ url: `${srv.url}/v1/grad`, ...post(smallBody) });
    console.log(`\n## hello: autocannon, 10 connections, ${duration} s`);
    console.log(`  hello-world (bare Fastify): ${fmt(rHello)}`);
    console.log(`  small /v1/grad (2-layer MLP, batch 8): ${fmt(rGrad)}; ratio ${(rGrad.requests.average / rHello.requests.average).toFixed(2)}`);
  }
  if (phases.has('overhead')) {
    const { engine } = await import(join(root, 'dist', 'index.js'));
    const { decodeTensor } = await import(join(root, 'dist', 'tensor', 'wire.js'));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const rt = (url, body) => new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: body ? 'POST' : 'GET', agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
    const seq = async (fn) => {
      for (let i = 0; i < 500; i++) await fn();
      const xs = [];
      for (let i = 0; i < 2000; i++) {
        const t0 = performance.now();
        await fn();
        xs.push(performance.now() - t0);
      }
      return summary(xs);
    };
    const decoded = Object.fromEntries(Object.entries(smallInputs).map(([k, v]) => [k, decodeTensor(v, `inputs.${k}`)]));
    const h = await seq(() => rt(`${hello.url}/hello`));
    const g = await seq(() => rt(`${srv.url}/v1/grad`, smallBody));
    const e = await seq(() => engine.grad(smallGraph, decoded, 'loss', ['w1', 'w2']));
    agent.destroy();
    console.log('\n## overhead: small /v1/grad, sequential on one keep-alive connection (2000 each)');
    line('hello-world round trip', h);
    line('/v1/grad round trip', g);
    line('in-process engine.grad', e, `  HTTP overhead at p50 ${ms(g.p50 - e.p50)} ms`);
  }
  await stop(hello);
}

if (phases.has('large')) {
  const n = 1 << 22;
  const big = f32(n);
  const negGraph = { inputs: { x: { shape: [n], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], outputs: ['y'] };
  const client = new LeanClient(srv.url);
  console.log(`\n## large: /v1/evaluate of neg on ${n} FP32 (${(n * 4 / 1e6).toFixed(1)} MB each way), lean client, median of 3 after 1`);
  for (const enc of ['json', 'b64', 'binary']) {
    const xs = [];
    let bytes = 0;
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const req = buildRequest({ graph: negGraph }, { inputs: { x: { shape: [n], datatype: 'FP32', data: big } } }, enc);
      const r = await client.call('/v1/evaluate', req, ['outputs']);
      if (i > 0) xs.push(performance.now() - t0);
      bytes = req.bytes + r.bytes;
    }
    const p50 = quantile(xs, 0.5);
    console.log(`  ${enc.padEnd(6)} ${ms(p50)} ms per round trip, ${(2 * n * 4 / 1e6 / (p50 / 1e3)).toFixed(0)} MB/s of tensor data, ${(bytes / 1e6).toFixed(0)} MB on the wire`);
  }
  client.close();
}

if (srv) await stop(srv);
if (floor) await stop(floor);

// ---- rss: a fresh server, warm / soak / after --------------------------------------------------------------------------

if (phases.has('rss')) {
  const s2 = await server();
  const tensors = mlpTensors();
  const idleRss = rssMB(s2.pid);
  /** Concurrency 8 on the MLP request, half the connections b64 and half binary, for `seconds`. */
  const soak = async (seconds, samples) => {
    const clients = Array.from({ length: 8 }, () => new LeanClient(s2.url));
    const end = performance.now() + seconds * 1000;
    let n = 0;
    const sampler = samples ? setInterval(() => samples.push(rssMB(s2.pid)), 500) : undefined;
    await Promise.all(clients.map(async (c, i) => {
      const enc = i % 2 ? 'binary' : 'b64';
      while (performance.now() < end) {
        await c.call('/v1/grad', mlpRequest(tensors, enc), ['outputs', 'gradients']);
        n++;
      }
    }));
    if (sampler) clearInterval(sampler);
    for (const c of clients) c.close();
    return n;
  };
  await soak(quick ? 2 : 4);
  await sleep(afterSeconds * 1000);
  const warm = rssMB(s2.pid);
  const samples = [];
  const t0 = performance.now();
  const n = await soak(soakSeconds, samples);
  const t1 = performance.now();
  const atEnd = rssMB(s2.pid);
  const gc = s2.gc.count(t0, t1);
  await sleep(afterSeconds * 1000);
  const after = rssMB(s2.pid);
  await stop(s2);
  console.log(`\n## rss: fresh server; warm = after a ${quick ? 2 : 4} s warm-up at concurrency 8 and ${afterSeconds} s idle (MB; load ${loadNow()})`);
  console.log(`  idle after start ${idleRss.toFixed(0)}; warm ${warm.toFixed(0)}; peak during the ${soakSeconds} s soak ${Math.max(...samples).toFixed(0)}; at its end ${atEnd.toFixed(0)}; ${afterSeconds} s after ${after.toFixed(0)} (${ratio(after / warm)} warm)`);
  console.log(`  soak: ${n} requests, ${(n / soakSeconds).toFixed(0)} req/s; full GCs ${gc.n} (${gc.perSecond.toFixed(2)}/s, longest ${ms(gc.maxPauseMs)} ms)`);
  table.push({ what: `rss: ${afterSeconds} s after a ${soakSeconds} s soak at concurrency 8 / warm`, value: `${after.toFixed(0)} / ${warm.toFixed(0)} MB = ${ratio(after / warm)} (peak ${Math.max(...samples).toFixed(0)} MB)`, target: '<= 1.3x', met: after / warm <= 1.3 });
  table.push({ what: 'rss: server full GCs per second during the soak (concurrency 8)', value: `${gc.perSecond.toFixed(2)}/s (${gc.n} in ${soakSeconds} s, longest ${ms(gc.maxPauseMs)} ms)`, target: 'rare (<= 1/s)', met: gc.perSecond <= 1 });
}

console.log(`\nload average at the end ${loadNow()} (at the start ${m.load})`);
if (table.length) printTargets('Ratios and targets (one run)', table);
