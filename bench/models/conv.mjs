#!/usr/bin/env node
/**
 * Convolution benchmark: conv2d 3x3, 64 -> 64 channels, 32x32, batch 32, FP32, padding 1, with bias. Forward
 * (`evaluate`), and forward + backward (`vjp` with a given output cotangent: the output and the gradients of x, w and
 * b), through the gradserve library, against PyTorch (F.conv2d, then torch.autograd.grad of the same cotangent) at 1
 * and at 2 threads; the faster PyTorch setting is the peer.
 *
 *   npm run build && node bench/models/conv.mjs [--rounds 8] [--steps 8] [--quick] [--no-kernels]
 *
 * Every peer runs in its own process and times steps on demand (a line protocol: "<fwd|fwdbwd> <count>" answered by
 * {"times": [ms, ...], "cpu": ms}): gradserve with its defaults (OpenBLAS's thread count: all cores) and with one thread
 * (OPENBLAS_NUM_THREADS=1), PyTorch with torch.set_num_threads(1) and (2). They are measured in interleaved rounds
 * (each round runs every peer on every workload, in a rotating order), so load from other processes falls on all of
 * them alike. Prints median and p99 per peer, which PyTorch setting won, and gradserve / PyTorch (target <= 1.1) for
 * gradserve's defaults and at equal thread counts. Then, unless --no-kernels, the native kernels alone in this
 * process (conv, and the two halves of its backward pass: convTranspose for dx and convWeightGrad for dw).
 * `PYTHON=/path/to/python3` selects the interpreter with torch (default /usr/bin/python3).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
const { kernels } = await import(join(root, 'dist', 'kernels.js'));

const argOf = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const quick = process.argv.includes('--quick');
const rounds = argOf('rounds', quick ? 2 : 8);
const steps = argOf('steps', quick ? 2 : 8);
const python = process.env.PYTHON ?? '/usr/bin/python3';

const [N, C, O, H, W, K] = [32, 64, 64, 32, 32, 3];
const TARGET = 1.1;

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (q === 0.5) return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

// ---- the gradserve workload ----------------------------------------------------------------------------------------
let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArray = (n, scale) => Float32Array.from({ length: n }, () => rand() * 2 * scale);

const graph = {
  inputs: { x: { shape: [null, C, H, W], datatype: 'FP32' }, w: { shape: [O, C, K, K], datatype: 'FP32' }, b: { shape: [O], datatype: 'FP32' } },
  nodes: [{ name: 'y', op: 'conv', inputs: ['x', 'w', 'b'], attrs: { pads: K >> 1 } }],
  outputs: ['y'],
};
const inputs = {
  x: tensor('FP32', [N, C, H, W], randArray(N * C * H * W, 1)),
  w: tensor('FP32', [O, C, K, K], randArray(O * C * K * K, 1 / Math.sqrt(C * K * K))),
  b: tensor('FP32', [O], randArray(O, 0.1)),
};
const cot = { y: tensor('FP32', [N, O, H, W], randArray(N * O * H * W, 1)) };
const gradserveSteps = {
  fwd: () => engine.evaluate(graph, inputs),
  fwdbwd: () => engine.vjp(graph, inputs, cot, ['x', 'w', 'b']),
};

/** A peer process's stdin loop: answers "<workload> <count>" with the times of that many steps (after 2 more). */
async function serve(stepsByWorkload, info) {
  console.log(JSON.stringify({ ready: true, ...info }));
  for await (const line of createInterface({ input: process.stdin })) {
    const [workload, count] = line.split(' ');
    const step = stepsByWorkload[workload];
    if (step === undefined) continue;
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
  const k = kernels.info();
  await serve(gradserveSteps, { blas: k.blas, simd: k.simd, threads: k.threads });
  process.exit(0);
}

/** A peer in a child process speaking the line protocol of serve() (torch_conv.py speaks it too). */
class Peer {
  constructor(label, cmd, args, env) {
    this.label = label;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.stderr = '';
    this.child.stderr.on('data', (c) => { this.stderr = (this.stderr + c).slice(-2000); });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next() {
    const r = await this.lines.next();
    if (r.done) throw new Error(`${this.label} exited: ${this.stderr.trim().split('\n').pop()}`);
    return JSON.parse(r.value);
  }

  /** Wall times of `count` steps, and the CPU time (all threads of the peer) they took together. */
  async time(workload, count) {
    this.child.stdin.write(`${workload} ${count}\n`);
    return this.next();
  }

  close() {
    this.child.stdin.end();
  }
}

// ---- the run -------------------------------------------------------------------------------------------------------
const load = () => os.loadavg().map((v) => v.toFixed(1)).join(' ');
console.log(`conv2d ${K}x${K}, ${C} -> ${O} channels, ${H}x${W}, batch ${N}, FP32, pads ${K >> 1}, bias`);
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, load average ${load()} at the start`);

const one = { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
const script = fileURLToPath(import.meta.url);
const peers = [
  new Peer('gradserve', process.execPath, [script, '--worker'], {}),
  new Peer('gradserve 1 thread', process.execPath, [script, '--worker'], one),
  ...[1, 2].map((t) => new Peer(`PyTorch ${t} thread${t > 1 ? 's' : ''}`, python, [join(here, 'torch_conv.py'), N, C, O, H, W, K, t].map(String),
    { OMP_NUM_THREADS: String(t), OPENBLAS_NUM_THREADS: String(t) })),
];
const ready = await Promise.all(peers.map((p) => p.next()));
console.log(`gradserve (${ready[0].blas}, simd ${ready[0].simd}) with its defaults (${ready[0].threads} BLAS threads) and with 1 thread`);
console.log(`PyTorch ${ready[2].version} (mkldnn ${ready[2].mkldnn ? 'available' : 'absent'}) at 1 and 2 threads; every peer in its own process`);
console.log(`${rounds} interleaved rounds of ${steps} steps per peer and workload\n`);

const workloads = ['fwd', 'fwdbwd'];
const samples = new Map(peers.map((p) => [p.label, { fwd: [], fwdbwd: [] }]));
const cpu = new Map(peers.map((p) => [p.label, { fwd: 0, fwdbwd: 0 }]));
for (let r = 0; r < rounds; r++) {
  for (const wl of workloads) {
    for (let i = 0; i < peers.length; i++) {
      const p = peers[(i + r) % peers.length];
      const res = await p.time(wl, steps);
      samples.get(p.label)[wl].push(...res.times);
      cpu.get(p.label)[wl] += res.cpu;
    }
  }
}
peers.forEach((p) => p.close());

const stat = (label, wl) => ({
  p50: quantile(samples.get(label)[wl], 0.5),
  p99: quantile(samples.get(label)[wl], 0.99),
  cpu: cpu.get(label)[wl] / samples.get(label)[wl].length,
});
console.log('ms per step            forward (evaluate)              forward+backward (vjp: y, dx, dw, db)');
console.log('                       median      p99   CPU time      median      p99   CPU time');
for (const p of peers) {
  const f = stat(p.label, 'fwd'), fb = stat(p.label, 'fwdbwd');
  const cols = [f.p50, f.p99, f.cpu, fb.p50, fb.p99, fb.cpu].map((v) => fmt(v).padStart(7));
  console.log(`${p.label.padEnd(20)} ${cols.slice(0, 3).join('  ')}     ${cols.slice(3).join('  ')}`);
}
console.log('(CPU time: of every thread of the peer process, per step; what the step costs whatever else the machine runs)');
const names = { fwd: 'forward', fwdbwd: 'forward+backward' };
const vs = (a, b, wl) => `${(stat(a, wl).p50 / stat(b, wl).p50).toFixed(2)}x median, ${(stat(a, wl).p99 / stat(b, wl).p99).toFixed(2)}x p99`;
for (const wl of workloads) {
  const best = ['PyTorch 1 thread', 'PyTorch 2 threads'].reduce((a, b) => (stat(a, wl).p50 <= stat(b, wl).p50 ? a : b));
  const ratio = stat('gradserve', wl).p50 / stat(best, wl).p50;
  console.log(`\n${names[wl]}: the faster PyTorch setting is ${best}`);
  console.log(`  gradserve (defaults) / ${best}: ${vs('gradserve', best, wl)} (target <= ${TARGET}x: ${ratio <= TARGET ? 'met' : 'NOT met'})`);
  console.log(`  equal threads: gradserve 1 thread / PyTorch 1 thread ${vs('gradserve 1 thread', 'PyTorch 1 thread', wl)};`);
  console.log(`                 gradserve / PyTorch 2 threads ${vs('gradserve', 'PyTorch 2 threads', wl)}`);
  const c = (a, b) => (stat(a, wl).cpu / stat(b, wl).cpu).toFixed(2);
  console.log(`  CPU time per step: gradserve 1 thread / PyTorch 1 thread ${c('gradserve 1 thread', 'PyTorch 1 thread')}x; gradserve / PyTorch 2 threads ${c('gradserve', 'PyTorch 2 threads')}x`);
}
console.log(`\n(${rounds * steps} samples per peer and workload; load average ${load()} at the end)`);

if (!process.argv.includes('--no-kernels')) {
  // The native kernels alone, without the engine around them: where the backward pass spends its time.
  const x = inputs.x.data, w = inputs.w.data, b = inputs.b.data, g = cot.y.data;
  const a = [[1, 1], [[1, 1], [1, 1]], [1, 1], 1];
  const parts = {
    'conv (forward)': () => kernels.conv(x, [N, C, H, W], w, [O, C, K, K], b, ...a),
    'convTranspose (dx)': () => kernels.convTranspose(g, [N, O, H, W], w, [O, C, K, K], null, ...a, [0, 0]),
    'convWeightGrad (dw)': () => kernels.convWeightGrad(x, [N, C, H, W], g, [N, O, H, W], [O, C, K, K], ...a),
  };
  console.log(`\nnative kernels alone in this process (${kernels.info().threads} BLAS threads; sync calls, median ms):`);
  for (const [label, f] of Object.entries(parts)) {
    f();
    const t = [];
    for (let i = 0; i < Math.max(3, steps); i++) {
      const t0 = performance.now();
      f();
      t.push(performance.now() - t0);
    }
    console.log(`  ${label.padEnd(22)} ${fmt(quantile(t, 0.5))}`);
  }
}
