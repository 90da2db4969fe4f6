#!/usr/bin/env node
/**
 * Spectral linear algebra against torch.linalg: eigh_values (eigvalsh), svd_values (svdvals) and qr_q + qr_r (qr) at
 * n = 64 and 256 (one matrix) and n = 16 (a batch of 1024), FP64, forward (`evaluate`) and forward + VJP (`vjp` with a
 * given cotangent of every output: the outputs and the gradient of a), through the gradserve library.
 *
 *   npm run build && node bench/linalg/spectral.mjs [--rounds 3] [--steps 4] [--ops eigh,svd,qr] [--quick]
 *
 * Four peer processes, each serving every workload on demand ("<workload> N" lines, answered with the times of N
 * steps after 2 unmeasured ones): gradserve with its defaults (OpenBLAS's thread count: all cores) and with one thread
 * (OPENBLAS_NUM_THREADS=1), PyTorch with torch.set_num_threads(1) and (2). Workload by workload they are measured in
 * interleaved rounds (balanced order), so load from other processes falls on all of them alike. Prints median and p99
 * per peer and workload, and gradserve (defaults) / the faster PyTorch setting. Results: bench/linalg/SPECTRAL.md.
 * `PYTHON=/path/to/python3` selects the interpreter with torch (default /usr/bin/python3).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import {
  argOf, flag, interleave, LinePeer, loadNow, ms, printMachine, printTargets, python, ratio, summary, TORCH_THREADS, GRADSERVE_NODE_FLAGS } from '../lib/measure.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

const OPS = { eigh: ['eigh_values'], svd: ['svd_values'], qr: ['qr_q', 'qr_r'] };
const SIZES = ['64', '256', '16x1024'];
const MODES = ['fwd', 'vjp'];
const shapeOf = (size) => (size === '16x1024' ? [1024, 16, 16] : [Number(size), Number(size)]);

// ---- the gradserve worker -------------------------------------------------------------------------------------------
if (flag('worker')) {
  const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
  const { kernels } = await import(join(root, 'dist', 'kernels.js'));
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const steps = new Map();
  const stepFor = (wl) => {
    if (steps.has(wl)) return steps.get(wl);
    const [op, size, mode] = wl.split('-');
    const shape = shapeOf(size);
    const n = shape.at(-1);
    const data = Float64Array.from({ length: shape.reduce((p, d) => p * d, 1) }, rand);
    if (op === 'eigh') {
      // symmetric, as the PyTorch peer's input
      for (let b = 0; b < data.length; b += n * n)
        for (let i = 0; i < n; i++)
          for (let j = 0; j < i; j++) data[b + i * n + j] = data[b + j * n + i];
    }
    const graph = {
      inputs: { a: { shape, datatype: 'FP64' } },
      nodes: OPS[op].map((name) => ({ name, op: name, inputs: ['a'] })),
      outputs: OPS[op],
    };
    const inputs = { a: tensor('FP64', shape, data) };
    let step;
    if (mode === 'fwd') step = () => engine.evaluate(graph, inputs);
    else {
      const outs = engine.shapes(graph, inputs).values;
      const cot = Object.fromEntries(OPS[op].map((o) => {
        const s = outs[o].shape;
        return [o, tensor('FP64', s, Float64Array.from({ length: s.reduce((p, d) => p * d, 1) }, rand))];
      }));
      step = () => engine.vjp(graph, inputs, cot, ['a']);
    }
    steps.set(wl, step);
    return step;
  };
  const k = kernels.info();
  console.log(JSON.stringify({ ready: true, blas: k.blas, threads: k.threads }));
  for await (const line of createInterface({ input: process.stdin })) {
    const [wl, count] = line.trim().split(/\s+/);
    const n = Number(count);
    if (!(n > 0)) continue;
    const step = stepFor(wl);
    for (let i = 0; i < 2; i++) await step();
    const times = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({ times, cpu: (cpu.user + cpu.system) / 1000 }));
  }
  process.exit(0);
}

// ---- the run -------------------------------------------------------------------------------------------------------
/** A peer serving every workload: "<workload> N" lines instead of LinePeer's "N". */
class WorkloadPeer extends LinePeer {
  async runOn(wl, n) {
    this.child.stdin.write(`${wl} ${n}\n`);
    return (await this.next()).times;
  }
}

const quick = flag('quick');
const rounds = argOf('rounds', quick ? 1 : 3);
const steps = argOf('steps', quick ? 2 : 4);
const ops = argOf('ops', 'eigh,svd,qr').split(',').filter((o) => o in OPS);
const workloads = ops.flatMap((op) => SIZES.flatMap((size) => MODES.map((mode) => `${op}-${size}-${mode}`)));

console.log('eigh_values / svd_values / qr_q + qr_r vs torch.linalg (eigvalsh / svdvals / qr), FP64; n = 64, 256 (one matrix), 16 (batch 1024)');
printMachine();
const script = fileURLToPath(import.meta.url);
const peers = [
  new WorkloadPeer('gradserve', process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker']),
  new WorkloadPeer('gradserve 1 thread', process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker'], { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' }),
  // as torchPeer: torch.set_num_threads in the script, the BLAS/OpenMP variables in its environment
  ...TORCH_THREADS.map((t) => new WorkloadPeer(`PyTorch ${t} thread${t > 1 ? 's' : ''}`, python, [join(here, 'torch_spectral.py'), String(t), '--serve'], {
    OMP_NUM_THREADS: String(t), OPENBLAS_NUM_THREADS: String(t), MKL_NUM_THREADS: String(t),
  })),
];
await Promise.all(peers.map((p) => p.ready()));
const gs = peers[0].info;
console.log(`gradserve (${gs.blas}) with its defaults (${gs.threads} BLAS threads) and with 1 thread; PyTorch ${peers[2].info.version} at ${TORCH_THREADS.join(' and ')} threads`);
console.log(`${rounds} interleaved rounds of ${steps} steps per peer and workload\n`);

const results = new Map();
for (const wl of workloads) {
  const samples = await interleave(peers.map((p) => ({ label: p.label, run: (n) => p.runOn(wl, n) })), rounds * steps, rounds, 50);
  results.set(wl, new Map([...samples].map(([label, t]) => [label, summary(t)])));
}
await Promise.all(peers.map((p) => p.close()));

const labels = peers.map((p) => p.label);
console.log(`ms per step: median / p99${' '.repeat(8)}${labels.map((l) => l.padStart(22)).join('')}   gradserve / best PyTorch`);
const table = [];
for (const wl of workloads) {
  const r = results.get(wl);
  const torchLabels = labels.filter((l) => l.startsWith('PyTorch'));
  const best = torchLabels.reduce((a, b) => (r.get(a).p50 <= r.get(b).p50 ? a : b));
  const q = r.get('gradserve').p50 / r.get(best).p50;
  const q99 = r.get('gradserve').p99 / r.get(best).p99;
  const cells = labels.map((l) => `${ms(r.get(l).p50)} / ${ms(r.get(l).p99)}`.padStart(22)).join('');
  console.log(`${wl.padEnd(34)}${cells}   ${ratio(q)} (p99 ${ratio(q99)}, vs ${best.replace('PyTorch ', '')})`);
  const eq = r.get('gradserve 1 thread').p50 / r.get('PyTorch 1 thread').p50;
  table.push({ what: `${wl}: gradserve / PyTorch best (${best.replace('PyTorch ', '')}), median; at 1 thread each`, value: `${ratio(q)} (p99 ${ratio(q99)}); ${ratio(eq)}` });
}
console.log(`\n(${rounds * steps} samples per peer and workload; load average ${loadNow()} at the end)`);
printTargets('Ratios (one run)', table);
