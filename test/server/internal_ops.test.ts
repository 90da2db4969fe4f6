/**
 * Internal ops (the ones derivative rules emit, `internal: true`) are callable over HTTP like any other op, so each
 * must validate its inputs like a public one. Driven by the registry: every internal op, on each of its samples, with
 * each input given mismatched shapes and datatypes, answers a 4xx problem (or a result), never a 500; and every op
 * with more than one input refuses at least one of the mismatches.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { OpDef, SampleInput } from '../../src/ops/types.js';
import { isFloat, type DType } from '../../src/tensor/dtype.js';
import { numel } from '../../src/tensor/tensor.js';
import type { GradserveApp } from '../../src/server/app.js';
import { rng } from '../support/random.js';
import { makeApp } from './helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

const internal = ALL_OPS.filter((op) => op.internal === true);

/** Shapes that differ from `s`: a dim more or less, a dim grown, emptied or shrunk to 1, a scalar, a different rank. */
function otherShapes(s: readonly number[]): number[][] {
  const out: number[][] = [[], [7], [2, ...s], [...s, 2]];
  if (s.length > 0) {
    out.push(s.slice(1), s.slice(0, -1));
    out.push([...s.slice(0, -1), s[s.length - 1]! + 1], [s[0]! + 1, ...s.slice(1)]);
    out.push([...s.slice(0, -1), 0], s.map(() => 1));
  }
  const seen = new Set<string>([JSON.stringify(s)]);
  return out.filter((x) => {
    const k = JSON.stringify(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function otherDtypes(d: DType): DType[] {
  return d === 'FP64' ? ['FP32', 'INT64'] : d === 'FP32' ? ['FP64'] : ['FP64', 'INT32'];
}

function wireTensor(shape: readonly number[], dtype: DType, r: () => number, values?: number[]): Record<string, unknown> {
  const n = numel(shape);
  let data: (number | boolean)[];
  if (values !== undefined && values.length === n) data = values;
  else if (dtype === 'BOOL') data = Array.from({ length: n }, () => r() > 0.5);
  // small non-negative integers: mostly valid indices, so the shape checks are what gets exercised
  else if (dtype === 'INT32' || dtype === 'INT64') data = Array.from({ length: n }, () => Math.floor(r() * 2));
  else data = Array.from({ length: n }, () => 2 * r() - 1);
  return { shape: [...shape], datatype: dtype, data };
}

interface Variant { label: string; inputs: { shape: number[]; dtype: DType; values?: number[] }[] }

function variants(op: OpDef): { attrs: Record<string, unknown>; v: Variant }[] {
  const out: { attrs: Record<string, unknown>; v: Variant }[] = [];
  for (const sample of op.samples) {
    const base = sample.inputs.map((s: SampleInput) => ({ shape: [...s.shape], dtype: s.dtype ?? 'FP64', ...(s.values ? { values: s.values } : {}) }));
    const attrs = (sample.attrs ?? {}) as Record<string, unknown>;
    base.forEach((b, i) => {
      for (const shape of otherShapes(b.shape)) {
        const inputs = base.map((x, j) => (j === i ? { shape, dtype: x.dtype } : x));
        out.push({ attrs, v: { label: `input ${i} shape ${JSON.stringify(shape)}`, inputs } });
      }
      for (const dtype of otherDtypes(b.dtype)) {
        const inputs = base.map((x, j) => (j === i ? { shape: x.shape, dtype } : x));
        out.push({ attrs, v: { label: `input ${i} ${dtype}`, inputs } });
      }
    });
  }
  return out;
}

async function post(url: string, payload: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

describe('internal ops validate like public ones', () => {
  test('there are internal ops to check', () => {
    expect(internal.length).toBeGreaterThan(10);
  });

  test.each(internal.map((op) => [op.name, op] as const))('%s: mismatched shapes and datatypes are 4xx, never 5xx', async (_n, op) => {
    const r = rng(1807);
    const failures: string[] = [];
    let refused = 0;
    for (const { attrs, v } of variants(op)) {
      const names = v.inputs.map((_, i) => `in${i}`);
      const graph = {
        inputs: Object.fromEntries(v.inputs.map((x, i) => [names[i], { shape: x.shape, datatype: x.dtype }])),
        nodes: [{ name: 'y', op: op.name, inputs: names, attrs }],
        outputs: ['y'],
      };
      const inputs = Object.fromEntries(v.inputs.map((x, i) => [names[i], wireTensor(x.shape, x.dtype, r, x.values)]));
      const res = await post('/v1/evaluate', { graph, inputs });
      if (res.status >= 500) {
        failures.push(`evaluate, ${v.label}: ${res.status} ${String(res.body.detail)}`);
        continue;
      }
      if (res.status >= 400) {
        refused++;
        if (typeof res.body.code !== 'string' || res.body.code === 'INTERNAL') failures.push(`evaluate, ${v.label}: no catalogue code`);
        continue;
      }
      // Accepted: its derivative graph must be buildable (or refused) too.
      const y = (res.body.outputs as Record<string, { datatype: string }> | undefined)?.y;
      if (y === undefined) { failures.push(`evaluate, ${v.label}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`); continue; }
      const wrt = names.filter((_, i) => isFloat(v.inputs[i]!.dtype));
      if (wrt.length === 0 || !isFloat(y.datatype as DType)) continue;
      const g = await post('/v1/grad', {
        graph: { ...graph, nodes: [...graph.nodes, { name: 'loss', op: 'sum', inputs: ['y'] }], outputs: ['loss'] },
        inputs, of: 'loss', wrt,
      });
      if (g.status >= 500) failures.push(`grad, ${v.label}: ${g.status} ${String(g.body.detail)}`);
    }
    expect(failures).toEqual([]);
    if (Array.isArray(op.inputs) ? op.inputs.length > 1 : true) {
      expect(refused, `${op.name} refuses none of its mismatched inputs`).toBeGreaterThan(0);
    }
  });
});
