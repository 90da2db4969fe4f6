#!/usr/bin/env node
/**
 * Linear-algebra benchmark: solve (b a vector), cholesky, inv and det, FP64, at n = 64, 256 and 1024 (one matrix) and
 * n = 16 (a batch of 1024), forward (`evaluate` of one node) and forward + backward (`vjp` of a given cotangent: the
 * output and the gradients of every input), through the gradserve library, against torch.linalg (forward under
 * no_grad, then torch.autograd.grad of the same cotangent) at 1 and at 2 threads; the faster PyTorch setting is the
 * peer of each workload.
 *
 *   npm run build && node bench/linalg/run.mjs [--rounds 5] [--segment-ms 100] [--steps 3] [--quick] [--ops solve,inv]
 *                                              [--sizes 64x1,16x1024]
 *
 * Four processes (gradserve with its defaults and with OPENBLAS_NUM_THREADS=1, PyTorch with torch.set_num_threads(1)
 * and (2) and the matching OMP/OPENBLAS thread variables) time steps on demand; for every workload they are measured
 * in interleaved rounds (the order balanced across rounds, the machine settling between segments: bench/lib/measure.mjs
 * roundOrder and settle), so load from other processes falls on all of them alike. Prints median and p99 per peer,
 * which PyTorch setting won and gradserve / PyTorch (target <= 1.2x) for medians and p99s.
 * `PYTHON=/path/to/python3` selects the interpreter with torch (default /usr/bin/python3).
 */
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { argOf, flag, LinePeer, loadNow, ms, printMachine, printTargets, ratio, roundOrder, settle, summary, TORCH_THREADS, torchPeer, GRADSERVE_NODE_FLAGS } from '../lib/measure.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const TARGET = 1.2;
const OPS = argOf('ops', 'solve,cholesky,inv,det').split(',');
const SIZES = argOf('sizes', '64x1,256x1,1024x1,16x1024').split(',');
const MODES = ['fwd', 'vjp'];
const quick = flag('quick');
const rounds = argOf('rounds', quick ? 1 : 5);
/** at least this many timed steps per segment; more for fast workloads, as many as fit in --segment-ms */
const steps = argOf('steps', quick ? 2 : 3);
const segmentMs = argOf('segment-ms', quick ? 40 : 100);
const MAX_STEPS = 5000;

// ---- the gradserve worker: "<op>:<n>x<batch>:<fwd|vjp> N" lines, answered with the times of N steps -----------------
async function worker() {
  const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
  const { kernels } = await import(join(root, 'dist', 'kernels.js'));
  let seed = 11;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  /** The same construction as torch_linalg.py: m / sqrt(n) + 2 I, or m mᵀ / n + I for cholesky (SPD). */
  const matrices = (op, n, batch) => {
    const nn = n * n;
    const m = Float64Array.from({ length: batch * nn }, rand);
    let a;
    if (op === 'cholesky') {
      a = kernels.matmul(m, [batch, n, n], m, [batch, n, n], false, true).data;
      for (let i = 0; i < a.length; i++) a[i] /= n;
    } else {
      a = m.map((v) => v / Math.sqrt(n));
    }
    for (let k = 0; k < batch; k++) for (let i = 0; i < n; i++) a[k * nn + i * n + i] += op === 'cholesky' ? 1 : 2;
    return a;
  };
  const cache = new Map();
  const stepOf = (wl) => {
    if (cache.has(wl)) return cache.get(wl);
    const [op, size, mode] = wl.split(':');
    const [n, batch] = size.split('x').map(Number);
    const lead = batch > 1 ? [batch] : [];
    const ins = { a: tensor('FP64', [...lead, n, n], matrices(op, n, batch)) };
    if (op === 'solve') ins.b = tensor('FP64', [...lead, n], Float64Array.from({ length: batch * n }, rand));
    const graph = {
      inputs: Object.fromEntries(Object.entries(ins).map(([k, t]) => [k, { shape: t.shape, datatype: 'FP64' }])),
      nodes: [{ name: 'y', op, inputs: Object.keys(ins) }],
      outputs: ['y'],
    };
    const outShape = op === 'det' ? lead : op === 'solve' ? [...lead, n] : [...lead, n, n];
    const cot = { y: tensor('FP64', outShape, Float64Array.from({ length: outShape.reduce((p, d) => p * d, 1) }, rand)) };
    const step = mode === 'fwd' ? () => engine.evaluate(graph, ins) : () => engine.vjp(graph, ins, cot, Object.keys(ins));
    cache.set(wl, step);
    return step;
  };
  const k = kernels.info();
  console.log(JSON.stringify({ ready: true, blas: k.blas, threads: k.threads, lapack: k.lapack }));
  for await (const line of createInterface({ input: process.stdin })) {
    const [wl, count] = line.trim().split(/\s+/);
    if (!wl || !(Number(count) > 0)) continue;
    const step = stepOf(wl);
    for (let i = 0; i < 2; i++) await step();
    const times = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < Number(count); i++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({ times, cpu: (cpu.user + cpu.system) / 1000 }));
  }
}

if (process.argv.includes('--worker')) {
  await worker();
  process.exit(0);
}

// ---- the run -------------------------------------------------------------------------------------------------------
console.log('torch.linalg vs gradserve: solve (b a vector), cholesky, inv, det; FP64; forward and forward+backward (vjp)');
printMachine();
const script = fileURLToPath(import.meta.url);
const peers = [
  new LinePeer('gradserve', process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker']),
  new LinePeer('gradserve 1 thread', process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker'], { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' }),
  ...TORCH_THREADS.map((t) => torchPeer(join(here, 'torch_linalg.py'), [t, '--serve'], t)),
];
await Promise.all(peers.map((p) => p.ready()));
const gs = peers[0].info;
console.log(`gradserve (${gs.blas}, LAPACK ${gs.lapack}) with its defaults (${gs.threads} BLAS threads) and with 1 thread; PyTorch ${peers[2].info.version} at ${TORCH_THREADS.join(' and ')} threads`);
console.log(`${rounds} interleaved rounds per workload; a segment is as many steps as fit in ${segmentMs} ms at the peer's own pace (at least ${steps}, at most ${MAX_STEPS}), after one unmeasured segment per peer\n`);

/** Times n steps of workload wl on a peer (the line protocol with the workload named). */
async function run(peer, wl, n) {
  peer.child.stdin.write(`${wl} ${n}\n`);
  const r = await peer.next();
  return r.times;
}

const results = [];
console.log('workload                   gradserve p50/p99      gradserve 1t p50/p99   PyTorch 1t p50/p99     PyTorch 2t p50/p99     gradserve / faster PyTorch: p50, p99; 1t / 1t p50');
for (const op of OPS) {
  for (const size of SIZES) {
    for (const mode of MODES) {
      const wl = `${op}:${size}:${mode}`;
      // Steps per segment: for each peer, as many as fit in --segment-ms at its own pace (at least --steps), so every
      // segment lasts about as long and load from outside falls on all peers alike. One segment per peer of that size
      // runs first, unmeasured, so each peer is timed in its steady state (JIT-compiled code, warm caches and
      // allocator), not in its first calls of a workload.
      const n = [];
      for (const p of peers) n.push(Math.max(steps, Math.min(MAX_STEPS, Math.floor(segmentMs / summary(await run(p, wl, 3)).p50))));
      for (let k = 0; k < peers.length; k++) {
        await run(peers[k], wl, n[k]);
        await settle();
      }
      const times = peers.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (const k of roundOrder(peers.length, r)) {
          times[k].push(...(await run(peers[k], wl, n[k])));
          await settle();
        }
      }
      const s = times.map(summary);
      const best = s[2].p50 <= s[3].p50 ? 2 : 3;
      const row = {
        op, size, mode, gs: s[0], gs1: s[1], t1: s[2], t2: s[3], best: `${TORCH_THREADS[best - 2]}t`,
        r50: s[0].p50 / s[best].p50, r99: s[0].p99 / s[best].p99, one: s[1].p50 / s[2].p50,
      };
      results.push(row);
      const col = (x) => `${ms(x.p50)} / ${ms(x.p99)}`.padEnd(22);
      console.log(`${wl.padEnd(26)} ${s.map(col).join(' ')} ${row.best}: ${ratio(row.r50)}, ${ratio(row.r99)}; ${ratio(row.one)}`);
    }
  }
}
await Promise.all(peers.map((p) => p.close()));
console.log(`\n(load average ${loadNow()} at the end)`);
function sizeLabel(size) {
  const [n, batch] = size.split('x');
  return batch === '1' ? n : `${n}, batch ${batch}`;
}
printTargets('Ratios and targets (one run; gradserve p50 / the faster PyTorch setting p50)', results.map((r) => ({
  what: `${r.op} n=${sizeLabel(r.size)} ${r.mode === 'fwd' ? 'forward' : 'forward+backward'} (vs PyTorch ${r.best})`,
  value: `${ms(r.gs.p50)} / ${ms(Math.min(r.t1.p50, r.t2.p50))} ms = ${ratio(r.r50)} (p99 ${ratio(r.r99)}); 1 thread each ${ratio(r.one)}`,
  target: `<= ${TARGET}x`,
  met: r.r50 <= TARGET,
})));
