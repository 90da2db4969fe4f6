#!/usr/bin/env node
/**
 * Convolution benchmark: conv2d 3x3, 64 -> 64 channels, 32x32, batch 32, FP32, padding 1, with bias. Forward
 * (`evaluate`), and forward + backward (`vjp` with a given output cotangent: the output and the gradients of x, w and
 * b), through the gradserve library, against PyTorch (F.conv2d, then torch.autograd.grad of the same cotangent) at 1
 * and at 2 threads; the faster PyTorch setting is the peer.
 *
 *   npm run build && node bench/models/conv.mjs [--rounds 8] [--steps 8] [--quick] [--no-kernels]
 *
 * Every peer runs in its own process, one per workload, and times steps on demand (the line protocol of
 * bench/lib/measure.mjs, with the CPU time of the steps): gradserve with its defaults (OpenBLAS's thread count: all
 * cores) and with one thread (OPENBLAS_NUM_THREADS=1), PyTorch with torch.set_num_threads(1) and (2). They are
 * measured in interleaved rounds (each round runs every peer, in a balanced order), so load from other processes falls
 * on all of them alike. Prints median and p99 per peer, which PyTorch setting won, and gradserve / PyTorch (target
 * <= 1.1) for gradserve's defaults and at equal thread counts. Then, unless --no-kernels, the native kernels alone in this
 * process (conv, and the two halves of its backward pass: convTranspose for dx and convWeightGrad for dw).
 * `PYTHON=/path/to/python3` selects the interpreter with torch (default /usr/bin/python3).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  argOf, flag, interleave, LinePeer, loadNow, ms, printMachine, printTargets, quantile, ratio, serveSteps, summary,
  TORCH_THREADS, torchPeer, GRADSERVE_NODE_FLAGS,
} from '../lib/measure.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { engine, tensor } = await import(join(root, 'dist', 'index.js'));
const { kernels } = await import(join(root, 'dist', 'kernels.js'));

const quick = flag('quick');
const rounds = argOf('rounds', quick ? 2 : 8);
const steps = argOf('steps', quick ? 2 : 8);

const [N, C, O, H, W, K] = [32, 64, 64, 32, 32, 3];
const TARGET = 1.1;
const WORKLOADS = { fwd: 'forward (evaluate)', fwdbwd: 'forward+backward (vjp: y, dx, dw, db)' };

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

if (flag('worker')) {
  const k = kernels.info();
  await serveSteps(gradserveSteps[argOf('worker', 'fwd')], { blas: k.blas, simd: k.simd, threads: k.threads });
  process.exit(0);
}

// ---- the run -------------------------------------------------------------------------------------------------------
console.log(`conv2d ${K}x${K}, ${C} -> ${O} channels, ${H}x${W}, batch ${N}, FP32, pads ${K >> 1}, bias`);
printMachine();

const script = fileURLToPath(import.meta.url);
const GRADSERVE = { 'gradserve': {}, 'gradserve 1 thread': { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } };
/** Every peer of every workload, labelled "<peer> <workload>" so that all of them run in one interleaving. */
const peers = Object.keys(WORKLOADS).flatMap((wl) => [
  ...Object.entries(GRADSERVE).map(([label, env]) => new LinePeer(label, process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker', wl], env)),
  ...TORCH_THREADS.map((t) => torchPeer(join(here, 'torch_conv.py'), [N, C, O, H, W, K, t, wl, '--serve'], t)),
].map((peer) => ({ label: `${peer.label} ${wl}`, run: (n) => peer.run(n), peer })));
await Promise.all(peers.map(({ peer }) => peer.ready()));
const labels = [...new Set(peers.map(({ peer }) => peer.label))];
const info = (label) => peers.find(({ peer }) => peer.label === label).peer.info;
const [gs, torch] = [info('gradserve'), info(labels.find((l) => l.startsWith('PyTorch')))];
console.log(`gradserve (${gs.blas}, simd ${gs.simd}) with its defaults (${gs.threads} BLAS threads) and with 1 thread`);
const mkldnn = torch.name.replace(/.*\((.*)\)/, '$1');
console.log(`PyTorch ${torch.version} (${mkldnn}) at ${TORCH_THREADS.join(' and ')} threads; every peer and workload in its own process`);
console.log(`${rounds} interleaved rounds of ${steps} steps per peer and workload\n`);

const samples = await interleave(peers, rounds * steps, rounds);
await Promise.all(peers.map(({ peer }) => peer.close()));

const stat = (label, wl) => {
  const p = peers.find((q) => q.label === `${label} ${wl}`);
  return { ...summary(samples.get(p.label)), cpu: p.peer.cpuPerStep() };
};
console.log('ms per step            forward (evaluate)              forward+backward (vjp: y, dx, dw, db)');
console.log('                       median      p99   CPU time      median      p99   CPU time');
for (const label of labels) {
  const f = stat(label, 'fwd'), fb = stat(label, 'fwdbwd');
  const cols = [f.p50, f.p99, f.cpu, fb.p50, fb.p99, fb.cpu].map((v) => ms(v).padStart(7));
  console.log(`${label.padEnd(20)} ${cols.slice(0, 3).join('  ')}     ${cols.slice(3).join('  ')}`);
}
console.log('(CPU time: of every thread of the peer process, per step; what the step costs whatever else the machine runs)');

const torchLabels = labels.filter((l) => l.startsWith('PyTorch'));
const [pt1, pt2] = torchLabels;
const vs = (a, b, wl) => `${ratio(stat(a, wl).p50 / stat(b, wl).p50)} median, ${ratio(stat(a, wl).p99 / stat(b, wl).p99)} p99`;
const table = [];
for (const wl of Object.keys(WORKLOADS)) {
  const best = torchLabels.reduce((a, b) => (stat(a, wl).p50 <= stat(b, wl).p50 ? a : b));
  const r = stat('gradserve', wl).p50 / stat(best, wl).p50;
  console.log(`\n${WORKLOADS[wl]}: the faster PyTorch setting is ${best}`);
  console.log(`  gradserve (defaults) / ${best}: ${vs('gradserve', best, wl)} (target <= ${TARGET}x: ${r <= TARGET ? 'met' : 'NOT met'})`);
  console.log(`  equal threads: gradserve 1 thread / ${pt1} ${vs('gradserve 1 thread', pt1, wl)};`);
  console.log(`                 gradserve / ${pt2} ${vs('gradserve', pt2, wl)}`);
  const c = (a, b) => ratio(stat(a, wl).cpu / stat(b, wl).cpu);
  console.log(`  CPU time per step: gradserve 1 thread / ${pt1} ${c('gradserve 1 thread', pt1)}; gradserve / ${pt2} ${c('gradserve', pt2)}`);
  table.push({ what: `${wl}: gradserve p50 / PyTorch best p50 (${best.replace('PyTorch ', '')})`, value: `${ms(stat('gradserve', wl).p50)} / ${ms(stat(best, wl).p50)} ms = ${ratio(r)}`, target: `<= ${TARGET}x`, met: r <= TARGET });
  table.push({ what: `${wl}: CPU time per step, gradserve 1 thread / ${pt1}`, value: c('gradserve 1 thread', pt1) });
}
console.log(`\n(${rounds * steps} samples per peer and workload; load average ${loadNow()} at the end)`);
printTargets('Ratios and targets (one run)', table);

if (!flag('no-kernels')) {
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
    console.log(`  ${label.padEnd(22)} ${ms(quantile(t, 0.5))}`);
  }
}
