#!/usr/bin/env node
/**
 * Model benchmark: forward + backward (the gradient of a scalar loss w.r.t. every parameter and the input) of three
 * models (graphs.mjs), through the gradserve library (`engine.grad`, the entry point the server's /v1/grad uses),
 * against PyTorch (torch.autograd.grad of the same loss, torch_models.py) at 1 and at 2 threads:
 *   - lenet: LeNet-style CNN on x[64,1,28,28] with softmax cross entropy,
 *   - resblock: ResNet basic block on x[32,64,32,32], batch_norm in training mode, loss mean(y²),
 *   - transformer: pre-norm encoder block on x[8,128,256], 4 heads, GELU MLP 256 -> 1024 -> 256, loss mean(y²).
 *
 *   npm run build && node bench/models/models.mjs [--rounds 8] [--steps 5] [--quick] [--only lenet,resblock]
 *                                                 [--no-memory] [--addon /path/to/other/gradserve.node [--addon-defaults]]
 *
 * For each model: the inputs are written once to a temporary folder that every peer reads, so all compute the same
 * thing; the gradients are checked against PyTorch's (max |gradserve - PyTorch| over max |PyTorch|, per tensor, that
 * floored at 1e-3 of the largest gradient entry; the worst is printed); then four peers, each in its own process, are timed in interleaved rounds (balanced order):
 * gradserve with its defaults and with one thread (OPENBLAS_NUM_THREADS=1), PyTorch with torch.set_num_threads(1)
 * and (2) plus OMP/OPENBLAS_NUM_THREADS. The peer is the faster PyTorch setting by median. Then the memory of one
 * backward step (unless --no-memory), measured the same way for both in fresh processes: the peak RSS during one step
 * (VmHWM after resetting it through /proc/self/clear_refs) minus the RSS before it, after a warm-up step, with
 * MALLOC_MMAP_THRESHOLD_=65536 so that freed tensors leave the RSS at once (gradserve also without its buffer pool and
 * malloc tuning, GRADSERVE_POOL_BYTES=0 GRADSERVE_MALLOC_TUNING=0). The step's figure holds the activations, the
 * gradients and every workspace; the inputs (the same bytes for both) are added for the total the targets use.
 * `--addon` adds a fifth peer, gradserve at one thread on another build of the addon (GRADSERVE_ADDON), to
 * compare two builds of the native kernels in one run. `PYTHON=/path/to/python3` selects the interpreter with torch
 * (default /usr/bin/python3).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  argOf, flag, interleave, LinePeer, loadNow, ms, printMachine, printTargets, python, ratio, serveSteps, summary,
  TORCH_THREADS, torchPeer, GRADSERVE_NODE_FLAGS,
} from '../lib/measure.mjs';
import { MODELS, modelInputs } from './graphs.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const script = fileURLToPath(import.meta.url);
const { engine, tensor, GraphBuilder } = await import(join(root, 'dist', 'index.js'));

const TIME_TARGET = 1.2;
const MEMORY_TARGET = 1.2;

/** Writes a model's inputs (FP32, labels INT64) and manifest to a fresh folder; returns the folder. */
function writeInputs(name, model) {
  const dir = mkdtempSync(join(tmpdir(), `gradserve-models-${name}-`));
  for (const [k, a] of Object.entries(modelInputs(model))) {
    const typed = a instanceof BigInt64Array ? a : Float32Array.from(a);
    writeFileSync(join(dir, `${k}.bin`), new Uint8Array(typed.buffer));
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ shapes: model.shapes, dtypes: model.dtypes, wrt: model.wrt, config: {} }));
  return dir;
}

/** A file's bytes in an ArrayBuffer of their own (a small file's Buffer may be a view into a shared pool). */
function fileBytes(path) {
  const buf = readFileSync(path);
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

/** The tensors of a folder written by writeInputs. */
function readInputs(dir) {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const out = {};
  for (const [k, shape] of Object.entries(m.shapes)) {
    const bytes = fileBytes(join(dir, `${k}.bin`));
    out[k] = m.dtypes[k] === 'INT64' ? tensor('INT64', shape, new BigInt64Array(bytes)) : tensor('FP32', shape, new Float32Array(bytes));
  }
  return out;
}

const inputBytes = (inputs) => Object.values(inputs).reduce((s, t) => s + t.data.byteLength, 0);

function rss() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const field = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)[1]) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

// ---- worker: gradserve in a child process ----------------------------------------------------------------------------
if (flag('worker')) {
  const [name, dir] = process.argv.slice(process.argv.indexOf('--worker') + 1);
  const model = MODELS[name](GraphBuilder);
  const inputs = readInputs(dir);
  const step = () => engine.grad(model.graph, inputs, 'loss', model.wrt);
  if (flag('memory')) {
    let stats;
    let cost;
    await engine.grad(model.graph, inputs, 'loss', model.wrt, { onPlan: (c) => void (cost = c), onExecuted: (s) => void (stats = s) });
    globalThis.gc?.();
    writeFileSync('/proc/self/clear_refs', '5');
    const base = rss().rss;
    const r = await step();
    const peak = rss().hwm;
    console.log(JSON.stringify({ baseline: base, peak, tensorPeak: stats.peakBytes, estimated: cost.peakBytes, held: Object.keys(r.gradients).length }));
    process.exit(0);
  }
  const { kernels } = await import(join(root, 'dist', 'kernels.js'));
  const k = kernels.info();
  await serveSteps(step, { blas: k.blas, simd: k.simd, threads: k.threads });
  process.exit(0);
}

// ---- the run ---------------------------------------------------------------------------------------------------------
const quick = flag('quick');
const rounds = argOf('rounds', quick ? 2 : 8);
const steps = argOf('steps', quick ? 2 : 5);
const only = argOf('only', Object.keys(MODELS).join(',')).split(',');
const GRADSERVE = { 'gradserve': {}, 'gradserve 1 thread': { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } };
const otherAddon = argOf('addon', undefined);
if (otherAddon !== undefined) GRADSERVE['other addon 1 thread'] = { ...GRADSERVE['gradserve 1 thread'], GRADSERVE_ADDON: otherAddon };
// --addon-defaults: the other build with its defaults too (thread choices compared, not only the single-thread kernels)
if (otherAddon !== undefined && flag('addon-defaults')) GRADSERVE['other addon'] = { GRADSERVE_ADDON: otherAddon };
const MEMORY_ENV = { MALLOC_MMAP_THRESHOLD_: '65536' };
const GRADSERVE_MEMORY_ENV = { ...MEMORY_ENV, GRADSERVE_POOL_BYTES: '0', GRADSERVE_MALLOC_TUNING: '0' };
const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

console.log('models forward + backward (gradient of the loss w.r.t. every parameter and the input), FP32');
printMachine();
console.log(`${rounds} interleaved rounds of ${steps} steps per peer; every peer in its own process\n`);

/** The gradients in this process against PyTorch's (written by torch_models.py --check): the worst relative error. */
function check(name, model, dir) {
  const out = mkdtempSync(join(tmpdir(), `gradserve-models-check-`));
  const r = spawnSync(python, [join(here, 'torch_models.py'), name, dir, '1', '--check', out], {
    encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(`torch_models.py --check failed: ${r.stderr}`);
  return engine.grad(model.graph, readInputs(dir), 'loss', model.wrt).then((g) => {
    const read = (f) => new Float32Array(fileBytes(join(out, f)));
    // max |diff| / max |PyTorch| per tensor, the denominator floored at 1e-3 of the largest gradient entry: a gradient
    // that is zero in exact arithmetic (the transformer's bk: softmax ignores a shift along its axis) holds only
    // rounding noise in both, and is compared with the other gradients' scale
    const theirs = Object.fromEntries(model.wrt.map((w) => [w, read(`grad_${w}.bin`)]));
    const scale = Math.max(...Object.values(theirs).map((b) => b.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    const rel = (a, b, floor) => {
      let num = 0;
      let den = floor;
      for (let i = 0; i < b.length; i++) {
        num = Math.max(num, Math.abs(a[i] - b[i]));
        den = Math.max(den, Math.abs(b[i]));
      }
      return num / (den || 1);
    };
    const errs = { loss: rel(g.outputs.loss.data, read('loss.bin'), 0) };
    for (const w of model.wrt) errs[w] = rel(g.gradients[w].data, theirs[w], 1e-3 * scale);
    rmSync(out, { recursive: true, force: true });
    return errs;
  });
}

function memoryOf(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const table = [];
for (const name of only) {
  const model = MODELS[name](GraphBuilder);
  const dir = writeInputs(name, model);
  const shapes = Object.entries(model.shapes).map(([k, s]) => `${k}[${s.join(',')}]`).join(' ');
  console.log(`=== ${name}: ${model.graph.nodes.length} nodes; ${shapes}`);

  const errs = await check(name, model, dir);
  const worst = Object.entries(errs).reduce((a, b) => (b[1] > a[1] ? b : a));
  console.log(`gradients vs PyTorch (max |diff| / max |PyTorch| per tensor, floored at 1e-3 of the largest): worst ${worst[1].toExponential(2)} (${worst[0]}); loss ${errs.loss.toExponential(2)}`);

  const peers = [
    ...Object.entries(GRADSERVE).map(([label, env]) => new LinePeer(label, process.execPath, [...GRADSERVE_NODE_FLAGS, script, '--worker', name, dir], env)),
    ...TORCH_THREADS.map((t) => torchPeer(join(here, 'torch_models.py'), [name, dir, t, '--serve'], t)),
  ].map((peer) => ({ label: peer.label, run: (n) => peer.run(n), peer }));
  await Promise.all(peers.map(({ peer }) => peer.ready()));
  const samples = await interleave(peers, rounds * steps, rounds);
  await Promise.all(peers.map(({ peer }) => peer.close()));
  const stat = (label) => ({ ...summary(samples.get(label)), cpu: peers.find((p) => p.label === label).peer.cpuPerStep() });
  console.log('ms per step              median      p99   CPU time');
  for (const { label } of peers) {
    const s = stat(label);
    console.log(`${label.padEnd(22)} ${[s.p50, s.p99, s.cpu].map((v) => ms(v).padStart(8)).join(' ')}`);
  }
  const torchLabels = peers.map((p) => p.label).filter((l) => l.startsWith('PyTorch'));
  const best = torchLabels.reduce((a, b) => (stat(a).p50 <= stat(b).p50 ? a : b));
  const gs = stat('gradserve');
  const bt = stat(best);
  const r50 = gs.p50 / bt.p50;
  const r99 = gs.p99 / bt.p99;
  const r1 = stat('gradserve 1 thread').p50 / stat(torchLabels[0]).p50;
  const cpu1 = stat('gradserve 1 thread').cpu / stat(torchLabels[0]).cpu;
  console.log(`faster PyTorch setting: ${best}; gradserve / ${best}: ${ratio(r50)} median, ${ratio(r99)} p99 (target <= ${TIME_TARGET}x: ${r50 <= TIME_TARGET ? 'met' : 'NOT met'})`);
  console.log(`equal threads: gradserve 1 thread / PyTorch 1 thread ${ratio(r1)} median; CPU time per step ${ratio(cpu1)}`);
  if (otherAddon !== undefined) {
    const [o, g1] = [stat('other addon 1 thread'), stat('gradserve 1 thread')];
    console.log(`other addon (${otherAddon}), 1 thread: this build / other ${ratio(g1.p50 / o.p50)} median, CPU time ${ratio(g1.cpu / o.cpu)}; other / PyTorch 1 thread ${ratio(o.p50 / stat(torchLabels[0]).p50)} median`);
    if (GRADSERVE['other addon'] !== undefined) {
      const od = stat('other addon');
      console.log(`other addon, defaults: this build / other ${ratio(gs.p50 / od.p50)} median, CPU time ${ratio(gs.cpu / od.cpu)}; other / ${best} ${ratio(od.p50 / bt.p50)} median`);
    }
  }
  table.push({ what: `${name}: time, gradserve p50 / PyTorch p50 (${best.replace('PyTorch ', '')})`, value: `${ms(gs.p50)} / ${ms(bt.p50)} ms = ${ratio(r50)}`, target: `<= ${TIME_TARGET}x`, met: r50 <= TIME_TARGET });
  table.push({ what: `${name}: time, p99 ratio`, value: `${ms(gs.p99)} / ${ms(bt.p99)} ms = ${ratio(r99)}` });

  if (!flag('no-memory')) {
    const ins = inputBytes(readInputs(dir));
    const g = memoryOf(process.execPath, ['--expose-gc', script, '--worker', name, dir, '--memory'], GRADSERVE_MEMORY_ENV);
    const t = Object.fromEntries(TORCH_THREADS.map((n) => [n, memoryOf(python, [join(here, 'torch_models.py'), name, dir, String(n), '--memory'],
      { ...MEMORY_ENV, OMP_NUM_THREADS: String(n), OPENBLAS_NUM_THREADS: String(n) })]));
    const gStep = g.peak - g.baseline;
    const bestThreads = Number(best.replace(/\D+/g, ''));
    const tStep = t[bestThreads].peak - t[bestThreads].baseline;
    const mr = (ins + gStep) / (ins + tStep);
    console.log(`memory of one step (peak RSS - RSS before): gradserve ${MiB(gStep)} (its own count of live tensors ${MiB(g.tensorPeak)}, planned ${MiB(g.estimated)}, inputs included);`
      + ` PyTorch ${TORCH_THREADS.map((n) => `${n} thread${n > 1 ? 's' : ''} ${MiB(t[n].peak - t[n].baseline)}`).join(', ')}; inputs ${MiB(ins)}`);
    console.log(`inputs + step, gradserve / ${best}: ${ratio(mr)} (target <= ${MEMORY_TARGET}x: ${mr <= MEMORY_TARGET ? 'met' : 'NOT met'}); step alone ${ratio(gStep / tStep)}`);
    table.push({ what: `${name}: backward peak memory, inputs + step peak RSS, gradserve / PyTorch (${best.replace('PyTorch ', '')})`, value: `${MiB(ins + gStep)} / ${MiB(ins + tStep)} = ${ratio(mr)}`, target: `<= ${MEMORY_TARGET}x`, met: mr <= MEMORY_TARGET });
  }
  table.push({ what: `${name}: gradients vs PyTorch, worst max-abs-diff / max-abs`, value: worst[1].toExponential(2) });
  rmSync(dir, { recursive: true, force: true });
  console.log('');
}
console.log(`(load average ${loadNow()} at the end)`);
printTargets('Ratios and targets (one run)', table);
