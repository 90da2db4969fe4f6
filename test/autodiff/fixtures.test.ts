/**
 * Every catalogue op's value and VJP against PyTorch (fixtures written by scripts/gen_fixtures.py and committed):
 * FP64 to 1e-10 relative, FP32 to 1e-4; the JVP too where the fixture has one; and whole graphs' gradients.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { evaluate, grad, jvp, ops, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { decodeTensor } from '../../src/tensor/wire.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ops');

interface OpCase {
  op: string;
  attrs: Record<string, unknown>;
  inputs: unknown[];
  output: unknown;
  cotangent: unknown | null;
  grads: (unknown | null)[];
  /** forward mode (some ops): a tangent per input (null: not differentiable) and the output's tangent */
  tangents?: (unknown | null)[];
  jvp?: unknown;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('_'));
const cases = files.flatMap((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { cases: OpCase[] }).cases.map((c, k) => ({ ...c, k })));

function closeTo(actual: Tensor, expected: Tensor, what: string): void {
  expect(actual.dtype, `${what} datatype`).toBe(expected.dtype);
  expect(actual.shape, `${what} shape`).toEqual(expected.shape);
  const tol = expected.dtype === 'FP32' ? 1e-4 : 1e-10;
  for (let i = 0; i < expected.data.length; i++) {
    const a = Number(actual.data[i]);
    const e = Number(expected.data[i]);
    if (Number.isNaN(e)) {
      expect(Number.isNaN(a), `${what}[${i}] NaN`).toBe(true);
      continue;
    }
    if (a === e) continue;
    const err = Math.abs(a - e) / Math.max(Math.abs(e), expected.dtype === 'FP32' ? 1 : 1e-3);
    expect(err, `${what}[${i}]: ${a} vs torch ${e}`).toBeLessThanOrEqual(tol);
  }
}

describe('PyTorch fixtures: ops', () => {
  test('every catalogue op has a fixture', () => {
    const covered = new Set(cases.map((c) => c.op));
    expect(ops().filter((o) => !o.internal).map((o) => o.name).filter((n) => !covered.has(n))).toEqual([]);
  });

  test.each(cases.map((c) => [`${c.op} #${c.k}`, c] as const))('%s: value, VJP (and JVP)', async (_l, c) => {
    const ins = c.inputs.map((w, i) => decodeTensor(w, `inputs.in${i}`));
    const names = ins.map((_, i) => `in${i}`);
    const graph: Graph = {
      inputs: Object.fromEntries(ins.map((t, i) => [names[i], { shape: [...t.shape], datatype: t.dtype }])),
      nodes: [{ name: 'y', op: c.op, inputs: names, attrs: c.attrs }],
      outputs: ['y'],
    };
    const inputs = Object.fromEntries(ins.map((t, i) => [names[i]!, t]));
    const y = (await evaluate(graph, inputs)).outputs.y!;
    closeTo(y, decodeTensor(c.output, 'output'), 'output');
    if (c.tangents !== undefined) {
      const tangents = Object.fromEntries(c.tangents.flatMap((t, i) => (t === null ? [] : [[names[i]!, decodeTensor(t, 'tangent')]])));
      const r = await jvp(graph, inputs, tangents, ['y']);
      closeTo(r.tangents.y!, decodeTensor(c.jvp, 'jvp'), 'JVP');
    }
    if (c.cotangent === null) return;
    const wrt = names.filter((_, i) => c.grads[i] !== null);
    if (wrt.length === 0) return;
    const r = await vjp(graph, inputs, { y: decodeTensor(c.cotangent, 'cotangent') }, wrt);
    names.forEach((n, i) => {
      if (c.grads[i] !== null) closeTo(r.gradients[n]!, decodeTensor(c.grads[i], 'grad'), `grad of ${n}`);
    });
  });
});

interface GraphCase {
  name: string;
  graph: Graph;
  inputs: Record<string, unknown>;
  of: string;
  value: unknown;
  wrt: string[];
  gradients: Record<string, unknown>;
}

const graphs = (JSON.parse(readFileSync(join(dir, '_graphs.json'), 'utf8')) as { graphs: GraphCase[] }).graphs;

describe('PyTorch fixtures: graphs', () => {
  test.each(graphs.map((g) => [g.name, g] as const))('%s: loss and gradients', async (_l, g) => {
    const inputs = Object.fromEntries(Object.entries(g.inputs).map(([k, v]) => [k, decodeTensor(v, `inputs.${k}`)]));
    const r = await grad(g.graph, inputs, g.of, g.wrt);
    closeTo(r.outputs[g.of]!, decodeTensor(g.value, 'value'), g.of);
    for (const w of g.wrt) closeTo(r.gradients[w]!, decodeTensor(g.gradients[w], w), `grad of ${w}`);
  });
});
