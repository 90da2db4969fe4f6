// Kernel benchmark: gradserve vs numpy and PyTorch CPU in one run (`npm run bench:kernels`).
// gemm in GFLOP/s (higher is better), elementwise in ns/element (lower is better), tiny call in µs.
// Ratios are "gradserve speed / peer speed": above 1.00 means gradserve is faster. Batches of gradserve and of the
// peers (a numpy/torch line server, peer.py) alternate and each side keeps its best, so both see the same load.
// Options: --quick (smaller sizes, for a smoke run), --json <file> (also write raw results).
// PYTHON=<interpreter> picks the peers' python (default /usr/bin/python3).
// OPENBLAS_NUM_THREADS=1 gives a gemm comparison that a busy machine disturbs far less than the 2-thread default.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonIdx = args.indexOf('--json');
const jsonOut = jsonIdx >= 0 ? args[jsonIdx + 1] : join(root, '.bench-out', 'kernels.json');

const k = createRequire(import.meta.url)(process.env.GRADSERVE_ADDON ?? join(root, 'build', 'Release', 'gradserve.node'));

const plan = {
  gemm_sizes: quick ? [256, 512] : [256, 512, 1024, 2048],
  elementwise_sizes: quick ? [1 << 20] : [1 << 20, 1 << 24],
  // OpenBLAS reads OPENBLAS_NUM_THREADS at load, in this process and in peer.py alike; torch is told the same.
  gemm_threads: Number(process.env.OPENBLAS_NUM_THREADS) || k.info().threads || 2,
  min_batch_s: quick ? 0.02 : 0.05,
  batches: quick ? 3 : 10,
};

function calibrate(fn) {
  fn();
  fn();
  for (let reps = 1; ; reps *= 2) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    if (Number(process.hrtime.bigint() - t) / 1e9 >= plan.min_batch_s) return reps;
  }
}

function batch(fn, reps) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  return Number(process.hrtime.bigint() - t) / 1e9 / reps;
}

// Same distributions as peer.py (values differ; the kernels' speed does not depend on them beyond their range).
let seed = 1;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
const fill = (a, lo, hi) => { for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rand(); return a; };

// One factory per case, so each case's inputs exist only while it runs (as in peer.py): a heap full of other cases'
// arrays would make V8's GC, which shares the two cores with OpenBLAS, part of every measurement.
const cases = new Map();
for (const n of plan.gemm_sizes) {
  for (const [dt, Ctor] of [['float32', Float32Array], ['float64', Float64Array]]) {
    cases.set(`gemm/${dt}/${n}`, () => {
      const a = fill(new Ctor(n * n), -2, 2);
      const b = fill(new Ctor(n * n), -2, 2);
      return () => k.matmul(a, [n, n], b, [n, n], false, false);
    });
  }
}
for (const n of plan.elementwise_sizes) {
  const s = [n];
  const pair = () => [fill(new Float32Array(n), -4, 4), fill(new Float32Array(n), -4, 4)];
  cases.set(`add/${n}`, () => { const [x, y] = pair(); return () => k.binary('add', x, s, y, s); });
  cases.set(`mul/${n}`, () => { const [x, y] = pair(); return () => k.binary('mul', x, s, y, s); });
  for (const op of ['exp', 'tanh', 'sigmoid']) {
    cases.set(`${op}/${n}`, () => { const x = fill(new Float32Array(n), -4, 4); return () => k.unary(op, x); });
  }
  cases.set(`log/${n}`, () => { const p = fill(new Float32Array(n), 0.01, 8); return () => k.unary('log', p); });
}
cases.set('tiny', () => { const small = new Float32Array(4).fill(1); return () => k.unary('neg', small); });
cases.set('tinyBinary', () => {
  const small = new Float32Array(4).fill(1);
  const s4 = [4];
  return () => k.binary('add', small, s4, small, s4);
});

const python = process.env.PYTHON ?? '/usr/bin/python3';
const child = spawn(python, [join(here, 'peer.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('error', (e) => console.error(`cannot start ${python}: ${e.message} (gradserve numbers only)`));
child.stdin.on('error', () => {});
const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
const ask = async (msg) => {
  child.stdin.write(`${msg}\n`);
  const r = await lines.next();
  if (r.done) throw new Error('peer.py exited early');
  return JSON.parse(r.value);
};
const min = (a, b) => (a === undefined || a === null ? b : b === undefined || b === null ? a : Math.min(a, b));
const gs = {};
const peers = { numpy: {}, torch: {}, versions: {} };
let peerOk = true;
try {
  child.stdin.write(`${JSON.stringify(plan)}\n`);
  peers.versions = JSON.parse((await lines.next()).value);
} catch (e) {
  peerOk = false;
  console.error(`peer.py unavailable: ${e.message}`);
}
// Best batch of each side, batches alternating gradserve / peers so load spikes hit both alike.
for (const [key, setup] of cases) {
  const fn = setup();
  const reps = calibrate(fn);
  const hasPeer = peerOk && key !== 'tinyBinary';
  let withPeer = hasPeer;
  try {
    if (withPeer) await ask(`case ${key}`);
  } catch (e) {
    console.error(`peer.py failed on ${key}: ${e.message}`);
    withPeer = peerOk = false;
  }
  for (let b = 0; b < plan.batches; b++) {
    gs[key] = min(gs[key], batch(fn, reps));
    if (withPeer) {
      const r = await ask('batch');
      peers.numpy[key] = min(peers.numpy[key], r.numpy);
      peers.torch[key] = min(peers.torch[key], r.torch ?? undefined);
    }
  }
}
child.stdin.end();

const info = k.info();
console.log(`gradserve ${info.version}  blas: ${info.blas}  simd: ${info.simd}  blas threads: ${info.threads}`);
console.log(`peers: numpy ${peers.versions.numpy ?? '-'}, torch ${peers.versions.torch ?? '-'} (elementwise: torch 1 thread; gemm: ${plan.gemm_threads} threads)\n`);

const fmt = (v, d = 2) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
const pad = (s, w) => String(s).padStart(w);
const ratio = (peer, mine) => (peer === undefined ? undefined : peer / mine);

console.log('gemm (GFLOP/s, higher is better)');
console.log(`${'case'.padEnd(22)}${pad('gradserve', 11)}${pad('numpy', 9)}${pad('torch', 9)}${pad('vs numpy', 10)}${pad('vs torch', 10)}`);
for (const n of plan.gemm_sizes) {
  for (const dt of ['float32', 'float64']) {
    const key = `gemm/${dt}/${n}`;
    const flops = 2 * n ** 3 / 1e9;
    const g = flops / gs[key];
    const np = peers.numpy[key] && flops / peers.numpy[key];
    const th = peers.torch[key] && flops / peers.torch[key];
    console.log(`${key.padEnd(22)}${pad(fmt(g, 1), 11)}${pad(fmt(np, 1), 9)}${pad(fmt(th, 1), 9)}${pad(fmt(np && g / np), 10)}${pad(fmt(th && g / th), 10)}`);
  }
}
console.log('\nelementwise float32 (ns/element, lower is better; ratio = peer time / gradserve time)');
console.log(`${'case'.padEnd(22)}${pad('gradserve', 11)}${pad('numpy', 9)}${pad('torch', 9)}${pad('vs numpy', 10)}${pad('vs torch', 10)}`);
for (const n of plan.elementwise_sizes) {
  for (const op of ['add', 'mul', 'exp', 'tanh', 'sigmoid', 'log']) {
    const key = `${op}/${n}`;
    const ns = (t) => (t === undefined ? undefined : (t * 1e9) / n);
    const label = `${op} ${n >= 1 << 24 ? '16M' : '1M'}`;
    console.log(`${label.padEnd(22)}${pad(fmt(ns(gs[key]), 3), 11)}${pad(fmt(ns(peers.numpy[key]), 3), 9)}${pad(fmt(ns(peers.torch[key]), 3), 9)}${pad(fmt(ratio(peers.numpy[key], gs[key])), 10)}${pad(fmt(ratio(peers.torch[key], gs[key])), 10)}`);
  }
}
console.log('\ntiny sync call (µs per call, 4 elements)');
const us = (t) => (t === undefined ? undefined : t * 1e6);
console.log(`gradserve unary neg ${fmt(us(gs.tiny), 3)} µs, binary add ${fmt(us(gs.tinyBinary), 3)} µs; numpy negative ${fmt(us(peers.numpy.tiny), 3)} µs; torch neg ${fmt(us(peers.torch.tiny), 3)} µs`);

mkdirSync(dirname(jsonOut), { recursive: true });
writeFileSync(jsonOut, JSON.stringify({ plan, info, gradserve: gs, ...peers }, null, 2));
console.log(`\nraw results: ${jsonOut}`);
