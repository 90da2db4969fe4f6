// POST /v1/render, timed in-process (app.inject: routing, schema check, transform, DOT, Graphviz layout; no socket).
// Target: the backward graph of the batch-64 MLP (784-256-10, bench/http/common.mjs) drawn as SVG in < 100 ms.
// Wall times on a busy machine include waiting for a core; the CPU time this process spent per request does not.
// Also: the same as DOT (no layout), and a deep MLP whose picture has about GRADSERVE_RENDER_MAX_NODES values, to
// show what the limit costs. Run after `npm run build`: node bench/render/run.mjs [--reps 50]
import os from 'node:os';
import { buildApp } from '../../dist/server/app.js';
import { mlpGraph } from '../http/common.mjs';
import { argOf, ms, summary } from '../lib/measure.mjs';

const reps = argOf('reps', 50);
const app = await buildApp({ logger: false });
await app.ready();

/** A chain of `layers` matmul + relu layers over [64, 32] activations, ending in a sum: forward and backward nodes. */
function deepMlp(layers) {
  const inputs = { x: { shape: [64, 32], datatype: 'FP32' } };
  const nodes = [];
  let h = 'x';
  for (let i = 0; i < layers; i++) {
    inputs[`w${i}`] = { shape: [32, 32], datatype: 'FP32' };
    nodes.push({ name: `z${i}`, op: 'matmul', inputs: [h, `w${i}`] }, { name: `h${i}`, op: 'relu', inputs: [`z${i}`] });
    h = `h${i}`;
  }
  nodes.push({ name: 'loss', op: 'sum', inputs: [h] });
  return { graph: { inputs, nodes, outputs: ['loss'] }, wrt: Array.from({ length: layers }, (_, i) => `w${i}`) };
}

async function time(label, body, format, n = reps) {
  const url = `/v1/render${format === 'dot' ? '?format=dot' : ''}`;
  const once = async () => {
    const t = performance.now();
    const c = process.cpuUsage();
    const res = await app.inject({ method: 'POST', url, payload: body });
    const u = process.cpuUsage(c);
    const dt = performance.now() - t;
    if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body.slice(0, 300)}`);
    return { dt, cpu: (u.user + u.system) / 1000, res };
  };
  const first = await once();
  for (let i = 0; i < 3; i++) await once();
  const times = [];
  const cpus = [];
  for (let i = 0; i < n; i++) {
    const r = await once();
    times.push(r.dt);
    cpus.push(r.cpu);
  }
  const s = summary(times);
  const cpu = summary(cpus);
  const values = (first.res.body.match(format === 'dot' ? /^\s*v\d+ \[/gm : /class="node /g) ?? []).length;
  console.log(`${label.padEnd(44)} ${String(values).padStart(4)} values  first ${ms(first.dt).padStart(6)} ms  median ${ms(s.p50).padStart(6)} ms  p99 ${ms(s.p99).padStart(6)} ms  cpu median ${ms(cpu.p50).padStart(6)} ms  (n=${s.n})`);
  return s;
}

console.log(`node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${os.availableParallelism()} cores; ${reps} repetitions after 3 warm-up requests; times per request, in-process`);
const mlp = { graph: mlpGraph, transform: 'grad', of: 'loss', wrt: ['w1', 'w2'], parameters: ['w1', 'w2'] };
const target = await time('MLP b64 forward + backward (SVG)', mlp, 'svg');
await time('MLP b64 forward + backward (DOT)', mlp, 'dot');
await time('MLP b64 forward only (SVG)', { graph: mlpGraph }, 'svg');
const deep = deepMlp(36);
await time('deep MLP, 36 layers, forward + backward (SVG)', { graph: deep.graph, transform: 'grad', of: 'loss', wrt: deep.wrt }, 'svg', Math.max(5, Math.ceil(reps / 5)));
await time('deep MLP, 18 layers, forward + backward (SVG)', { graph: deepMlp(18).graph, transform: 'grad', of: 'loss', wrt: deepMlp(18).wrt }, 'svg', Math.max(5, Math.ceil(reps / 5)));
console.log(`target: MLP backward graph as SVG in < 100 ms: median ${ms(target.p50)} ms (p99 ${ms(target.p99)} ms) -> ${target.p50 < 100 ? 'met' : 'NOT met'}${target.p99 < 100 ? '' : '; the p99 is over it on this machine at this load'}`);
await app.close();
