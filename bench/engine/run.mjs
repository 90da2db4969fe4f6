#!/usr/bin/env node
/**
 * Engine benchmark: MLP 784-256-10 forward + backward with softmax cross entropy (gradients of w1, b1, w2, b2), FP32,
 * at batch 64 and batch 1024, through the library API (`engine.grad`), against PyTorch CPU at 1 and at 2 threads
 * (compared with the faster of the two) and TensorFlow.js (cpu and wasm backends).
 *
 *   npm run build:ts && node bench/engine/run.mjs [--reps 600] [--reps-large 120] [--rounds 6] [--tf-seconds 3]
 *                                                 [--no-tfjs] [--quick]
 *
 * gradserve runs in child processes of this script: one with the defaults (a plan runs as one native program, and
 * matrix products pick their BLAS threads per call), one with node's default heap instead of the initial heap size
 * the docs recommend for a process that calls the engine in a loop (`node --initial-old-space-size=128`, which every
 * other gradserve peer gets; with the default, full collections set the p99), one calling with `{ inline: true }`
 * (the kernels on the calling thread, no thread-pool hand-off), one with GRADSERVE_PROGRAMS=0 (node by
 * node, for comparison) and one with OPENBLAS_NUM_THREADS=1 (for information); PyTorch runs in one python process per thread
 * setting (torch.set_num_threads and OMP/OPENBLAS_NUM_THREADS). All are measured in interleaved rounds, so load
 * from other processes falls on all of them alike. Prints median and p99 per peer, which thread setting won, and the
 * ratios against the best PyTorch setting. `--reps` is per peer at batch 64, `--reps-large` at batch 1024.
 * `PYTHON=/path/to/python3` selects the interpreter with torch (default /usr/bin/python3).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  argOf, bestOf, flag, interleave, LinePeer, loadNow, ms, printMachine, printTargets, ratio, serveSteps, summary, TORCH_THREADS,
  torchPeer,
} from '../lib/measure.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const SHAPES = [{ B: 64, D: 784, H: 256, C: 10, target: 1.0 }, { B: 1024, D: 784, H: 256, C: 10, target: 0.95 }];

let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArray = (n, scale) => Float32Array.from({ length: n }, () => rand() * 2 * scale);

// ---- worker: gradserve in a child process, line protocol of bench/lib/measure.mjs LinePeer -------------------------

async function worker() {
  const [B, D, H, C] = process.argv.slice(process.argv.indexOf('--worker') + 1, process.argv.indexOf('--worker') + 5).map(Number);
  const { engine, tensor, GraphBuilder } = await import(join(root, 'dist', 'index.js'));
  const b = new GraphBuilder();
  const x = b.input('x', [null, D]);
  const labels = b.input('labels', [null], 'INT64');
  const h = x.matmul(b.input('w1', [D, H])).add(b.input('b1', [H])).relu();
  const z = h.matmul(b.input('w2', [H, C])).add(b.input('b2', [C]));
  const graph = b.output(z.softmaxCrossEntropy(labels).as('loss')).build();
  const inputs = {
    x: tensor('FP32', [B, D], randArray(B * D, 1)),
    labels: tensor('INT64', [B], BigInt64Array.from({ length: B }, (_, i) => BigInt(i % C))),
    w1: tensor('FP32', [D, H], randArray(D * H, 1 / Math.sqrt(D))),
    b1: tensor('FP32', [H], new Float32Array(H)),
    w2: tensor('FP32', [H, C], randArray(H * C, 1 / Math.sqrt(H))),
    b2: tensor('FP32', [C], new Float32Array(C)),
  };
  const wrt = ['w1', 'b1', 'w2', 'b2'];
  // GRADSERVE_BENCH_INLINE=1: the library's `inline` option (kernels on the calling thread, no thread-pool hand-off)
  const opts = process.env.GRADSERVE_BENCH_INLINE === '1' ? { inline: true } : undefined;
  const step = () => engine.grad(graph, inputs, 'loss', wrt, opts);
  // Peak of live tensor bytes during one step (measured over distinct buffers, and the planner's estimate) against
  // inputs + every forward activation + the gradients, what a tape-based framework holds at its peak.
  let cost;
  let stats;
  await engine.grad(graph, inputs, 'loss', wrt, { onPlan: (c) => void (cost = c), onExecuted: (s) => void (stats = s) });
  const shapes = engine.shapes(graph, inputs);
  const bytes = (v) => v.shape.reduce((a, d) => a * d, 1) * (v.datatype === 'INT64' || v.datatype === 'FP64' ? 8 : 4);
  const ref = Object.keys(inputs).reduce((s, k) => s + bytes(shapes.values[k]), 0)
    + graph.nodes.reduce((s, n) => s + bytes(shapes.values[n.name]), 0) + wrt.reduce((s, k) => s + bytes(shapes.values[k]), 0);
  const { kernels } = await import(join(root, 'dist', 'kernels.js'));
  const info = kernels.info();
  await serveSteps(step, { programs: process.env.GRADSERVE_PROGRAMS !== '0', peak: stats.peakBytes, estimated: cost.peakBytes, ref, blas: info.blas, simd: info.simd, threads: info.threads });
}

// ---- TF.js, in this process, after the interleaved peers ------------------------------------------------------------

async function tfjsPeer(tf, backend, { B, D, H, C }, seconds) {
  await tf.setBackend(backend);
  await tf.ready();
  const x = tf.tensor2d(randArray(B * D, 1), [B, D]);
  const labels = tf.oneHot(tf.tensor1d(Int32Array.from({ length: B }, (_, i) => i % C), 'int32'), C);
  const params = [
    tf.tensor2d(randArray(D * H, 1 / Math.sqrt(D)), [D, H]), tf.zeros([H]),
    tf.tensor2d(randArray(H * C, 1 / Math.sqrt(H)), [H, C]), tf.zeros([C]),
  ];
  const g = tf.grads((w1, b1, w2, b2) => tf.losses.softmaxCrossEntropy(labels, tf.relu(x.matMul(w1).add(b1)).matMul(w2).add(b2)));
  const step = async () => {
    const gs = g(params);
    await Promise.all(gs.map((t) => t.data()));
    tf.dispose(gs);
  };
  await step();
  // As many steps as fit in `seconds` (at least 3, at most 200): TF.js cpu takes seconds per step at batch 1024.
  const times = [];
  const start = performance.now();
  while (times.length < 200 && (times.length < 3 || performance.now() - start < seconds * 1000)) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  tf.dispose([x, labels, ...params]);
  return summary(times);
}

// ---- main -----------------------------------------------------------------------------------------------------------

async function main() {
  const quick = flag('quick');
  const reps = argOf('reps', quick ? 100 : 600);
  const repsLarge = argOf('reps-large', quick ? 20 : 120);
  const rounds = argOf('rounds', quick ? 2 : 6);
  const tfSeconds = argOf('tf-seconds', quick ? 1 : 3);
  const m = printMachine();
  console.log(`command: node bench/engine/run.mjs ${process.argv.slice(2).join(' ')}`.trim());
  console.log(`per peer: ${reps} steps at batch 64, ${repsLarge} at batch 1024, in ${rounds} interleaved rounds`);

  let tf;
  if (!flag('no-tfjs')) {
    try {
      tf = await import('@tensorflow/tfjs');
      await import('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      console.log(`TensorFlow.js unavailable: ${e.message}`);
    }
  }

  const { HEAP_FLAG } = await import(join(root, 'dist', 'server', 'config.js'));
  const table = [];
  for (const shape of SHAPES) {
    const { B, D, H, C } = shape;
    const dims = [B, D, H, C].map(String);
    const self = fileURLToPath(import.meta.url);
    // node started with the initial heap size the docs recommend for a process that calls the engine in a loop (and
    // that the server runs with, src/server/config.ts HEAP_FLAG); the same with node's default heap beside it
    const gs = new LinePeer('gradserve (programs)', process.execPath, [HEAP_FLAG, self, '--worker', ...dims], { GRADSERVE_PROGRAMS: '1' });
    const gsHeap = new LinePeer("gradserve (programs, node's default heap)", process.execPath, [self, '--worker', ...dims], { GRADSERVE_PROGRAMS: '1' });
    // the same calls with `{ inline: true }`: the kernels on the calling thread, as PyTorch runs them
    const gsInline = new LinePeer('gradserve (programs, inline: true)', process.execPath, [HEAP_FLAG, self, '--worker', ...dims], { GRADSERVE_PROGRAMS: '1', GRADSERVE_BENCH_INLINE: '1' });
    const gsNodes = new LinePeer('gradserve (node by node, GRADSERVE_PROGRAMS=0)', process.execPath, [HEAP_FLAG, self, '--worker', ...dims], { GRADSERVE_PROGRAMS: '0' });
    // For information: gradserve with OpenBLAS held to one thread (its default picks all cores for a large product).
    const gs1 = new LinePeer('gradserve (programs, OPENBLAS_NUM_THREADS=1)', process.execPath, [HEAP_FLAG, self, '--worker', ...dims], { GRADSERVE_PROGRAMS: '1', OPENBLAS_NUM_THREADS: '1' });
    const torch = TORCH_THREADS.map((t) => torchPeer(join(here, 'torch_peer.py'), [...dims, t, 'bias', '--serve'], t));
    const peers = [gs, gsInline, gsHeap, gsNodes, gs1, ...torch];
    await Promise.all(peers.map((p) => p.ready()));
    if (shape === SHAPES[0]) console.log(`gradserve kernels: ${gs.info.blas}, simd ${gs.info.simd}, ${gs.info.threads} BLAS threads by default`);
    const n = B === 64 ? reps : repsLarge;
    const res = await interleave(peers, n, rounds);
    await Promise.all(peers.map((p) => p.close()));

    const g = summary(res.get(gs.label));
    const gn = summary(res.get(gsNodes.label));
    const g1 = summary(res.get(gs1.label));
    const gh = summary(res.get(gsHeap.label));
    const gi = summary(res.get(gsInline.label));
    const { best, rows } = bestOf(new Map(torch.map((p) => [p.label, res.get(p.label)])));
    console.log(`\n## MLP x[${B},${D}] -> ${H} -> ${C}, softmax cross entropy, forward + backward, FP32 (ms per step; load ${loadNow()})`);
    const line = (label, s, extra = '') => console.log(`  ${label.padEnd(48)} p50 ${ms(s.p50).padStart(7)}  p99 ${ms(s.p99).padStart(7)}  (n ${s.n})${extra}`);
    line(gs.label, g);
    line(gsInline.label, gi, `  vs pooled ${ratio(gi.p50 / g.p50)}`);
    line(gsHeap.label, gh, `  p99 vs ${HEAP_FLAG} ${ratio(gh.p99 / g.p99)}`);
    line(gsNodes.label, gn, `  node-by-node/programs ${ratio(gn.p50 / g.p50)}`);
    line(gs1.label, g1, `  vs default ${ratio(g1.p50 / g.p50)}`);
    for (const r of rows) line(`PyTorch ${torch[0].info.version}, ${r.label.replace('PyTorch ', '')}`, r, r === best ? '  <- faster setting' : '');
    console.log(`  gradserve / PyTorch best (${best.label.replace('PyTorch ', '')}): p50 ${ratio(g.p50 / best.p50)}, p99 ${ratio(g.p99 / best.p99)}; target p50 <= ${shape.target.toFixed(2)}x`);
    table.push({ what: `batch ${B}: gradserve p50 / PyTorch best p50 (${best.label.replace('PyTorch ', '')})`, value: `${ms(g.p50)} / ${ms(best.p50)} ms = ${ratio(g.p50 / best.p50)}`, target: `<= ${shape.target.toFixed(2)}x`, met: g.p50 / best.p50 <= shape.target });
    table.push({ what: `batch ${B}: gradserve p99 / PyTorch best p99`, value: `${ms(g.p99)} / ${ms(best.p99)} ms = ${ratio(g.p99 / best.p99)}` });
    table.push({ what: `batch ${B}: gradserve with { inline: true } / PyTorch best, p50; p99`, value: `${ms(gi.p50)} / ${ms(best.p50)} ms = ${ratio(gi.p50 / best.p50)}; ${ms(gi.p99)} / ${ms(best.p99)} ms = ${ratio(gi.p99 / best.p99)}` });
    table.push({ what: `batch ${B}: gradserve with node's default heap / PyTorch best, p50; p99`, value: `${ms(gh.p50)} / ${ms(best.p50)} ms = ${ratio(gh.p50 / best.p50)}; ${ms(gh.p99)} / ${ms(best.p99)} ms = ${ratio(gh.p99 / best.p99)}` });
    table.push({ what: `batch ${B}: node by node / programs, p50`, value: `${ms(gn.p50)} / ${ms(g.p50)} ms = ${ratio(gn.p50 / g.p50)}` });
    table.push({ what: `batch ${B}: gradserve with 1 BLAS thread / PyTorch best, p50`, value: `${ms(g1.p50)} / ${ms(best.p50)} ms = ${ratio(g1.p50 / best.p50)}` });

    if (tf) {
      for (const backend of ['cpu', 'wasm']) {
        const t = await tfjsPeer(tf, backend, shape, tfSeconds);
        line(`TF.js ${tf.version.tfjs} ${backend}`, t, `  tfjs/gradserve ${ratio(t.p50 / g.p50)}`);
        table.push({ what: `batch ${B}: TF.js ${backend} p50 / gradserve p50`, value: `${ms(t.p50)} / ${ms(g.p50)} ms = ${ratio(t.p50 / g.p50)}` });
      }
    }
    const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const i = gs.info;
    console.log(`  backward peak live ${MiB(i.peak)} measured (${MiB(i.estimated)} estimated) vs inputs+activations+gradients ${MiB(i.ref)} = ${(i.peak / i.ref).toFixed(2)}x`);
  }
  console.log(`\nload average at the end ${loadNow()} (at the start ${m.load})`);
  printTargets('Ratios and targets (one run)', table);
}

if (process.argv.includes('--worker')) await worker();
else await main();
