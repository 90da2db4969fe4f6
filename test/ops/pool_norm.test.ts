/**
 * Pooling and normalization ops beyond the registry-wide checks: the problem+json bodies of their errors, optional
 * inputs, PyTorch's tie rule through the engine, GraphBuilder methods, and derivative graphs built for an unknown
 * batch size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engine, evaluate, grad, GraphBuilder, tensor, transform, vjp } from '../../src/index.js';
import { vmapGraph } from '../../src/autodiff/vmap.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import { sampleTensor } from '../autodiff/opcheck_support.js';
import type { Graph } from '../../src/graph/types.js';
import type { GradserveApp } from '../../src/server/app.js';
import { rng } from '../support/random.js';
import { makeApp } from '../server/helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

interface Problem { code: string; detail: string; errors: { path: string; message: string }[] }

/** POST /v1/shapes of a one-node graph over declared inputs: the problem+json body of its error. */
async function problem(op: string, inputs: Record<string, number[]>, attrs: Record<string, unknown> = {}, datatype = 'FP32'): Promise<{ status: number; body: Problem }> {
  const graph = {
    inputs: Object.fromEntries(Object.entries(inputs).map(([k, shape]) => [k, { shape, datatype }])),
    nodes: [{ name: 'y', op, inputs: Object.keys(inputs), attrs }],
    outputs: ['y'],
  };
  const r = await app.inject({ method: 'POST', url: '/v1/shapes', payload: { graph, inputs: Object.fromEntries(Object.entries(graph.inputs)) } });
  expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
  return { status: r.statusCode, body: r.json() as Problem };
}

describe('error bodies', () => {
  it.each([
    ['max_pool', { x: [1, 2, 3, 3] }, { kernel_shape: [4, 2] }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[0]',
      'node "y" (max_pool): the kernel (extent 4 on spatial axis 0) is larger than the padded input (3 + 0 + 0 = 3) of x [1, 2, 3, 3]'],
    ['max_pool', { x: [1, 1, 5] }, { kernel_shape: [3], dilations: [3], pads: [[1, 0]] }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[0]',
      'the kernel (extent 7 on spatial axis 0) is larger than the padded input (5 + 1 + 0 = 6)'],
    ['avg_pool', { x: [1, 2, 6, 6] }, { kernel_shape: [2, 2], pads: [[0, 0], [2, 0]] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.pads',
      'node "y" (avg_pool): pads [2, 0] on spatial axis 1 must be smaller than the kernel size 2'],
    ['max_pool', { x: [1, 2, 6, 6] }, { kernel_shape: [2, 2], strides: [1] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.strides',
      'strides has 1 entries but kernel_shape [2, 2] has 2 spatial axes'],
    ['max_pool', { x: [2, 6, 6] }, { kernel_shape: [2, 2] }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[0]',
      'x [2, 6, 6] must be (N, C) followed by 2 spatial axes for kernel_shape [2, 2]'],
    ['avg_pool', { x: [1, 1, 4] }, { kernel_shape: [2], dilations: [2] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.dilations', 'dilations'],
    ['group_norm', { x: [2, 6, 3], s: [6], b: [6] }, { groups: 4 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[0]',
      'node "y" (group_norm): the 6 channels of x [2, 6, 3] are not divisible by groups 4'],
    ['group_norm', { x: [2, 6, 3], s: [3], b: [6] }, { groups: 3 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[1]',
      'scale [3] must have shape [6] (one value per channel of x [2, 6, 3])'],
    ['layer_norm', { x: [2, 3, 4], s: [3] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[1]',
      'node "y" (layer_norm): scale [3] must have shape [4] (x.shape[-1:] of x [2, 3, 4])'],
    ['layer_norm', { x: [2, 3, 4], s: [3, 4], b: [4] }, { axis: 1 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[2]',
      'bias [4] must have shape [3, 4] (x.shape[1:] of x [2, 3, 4])'],
    ['rms_norm', { x: [2, 3] }, { axis: 2 }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axis', 'axis 2 is out of range for rank 2'],
    ['batch_norm', { x: [4, 3, 2], s: [3], b: [3], m: [3], v: [2] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[4]',
      'var [2] must have shape [3] (one value per channel of x [4, 3, 2])'],
    ['batch_norm', { x: [4], s: [4], b: [4], m: [4], v: [4] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[0]',
      'x [4] must be (N, C) followed by 0 to 3 spatial axes'],
  ] as const)('%s %j %j', async (op, inputs, attrs, code, path, detail) => {
    const { status, body } = await problem(op, inputs as unknown as Record<string, number[]>, attrs as Record<string, unknown>);
    expect(status).toBe(code === 'INVALID_ATTRS' || code === 'SHAPE_MISMATCH' ? 422 : 400);
    expect(body.code).toBe(code);
    expect(body.detail).toContain(detail);
    expect(body.errors[0]!.path).toBe(path);
  });

  it('refuses integer inputs and mixed datatypes', async () => {
    const ints = await problem('max_pool', { x: [1, 1, 4] }, { kernel_shape: [2] }, 'INT32');
    expect(ints.body).toMatchObject({ code: 'DATATYPE_MISMATCH', detail: expect.stringContaining('x is INT32; max_pool accepts FP32, FP64') });
    const r = await app.inject({
      method: 'POST', url: '/v1/shapes', payload: {
        graph: {
          inputs: { x: { shape: [2, 4], datatype: 'FP32' }, s: { shape: [4], datatype: 'FP64' } },
          nodes: [{ name: 'y', op: 'rms_norm', inputs: ['x', 's'] }],
        },
        inputs: { x: { shape: [2, 4], datatype: 'FP32' }, s: { shape: [4], datatype: 'FP64' } },
      },
    });
    expect(r.json()).toMatchObject({ code: 'DATATYPE_MISMATCH', detail: expect.stringContaining('x is FP32 but scale is FP64') });
  });

  it('optional inputs are left off from the end; too many is INVALID_REQUEST naming them', async () => {
    const { status, body } = await problem('layer_norm', { x: [2, 4], s: [4], b: [4], c: [4] });
    expect(status).toBe(400);
    expect(body.code).toBe('INVALID_REQUEST');
    expect(body.detail).toContain('node "y" (layer_norm) takes 1 to 3 inputs (x, scale?, bias?), got 4');
    expect(body.errors[0]!.path).toBe('graph.nodes[0].inputs');
    const few = await problem('group_norm', { x: [2, 4], s: [4] }, { groups: 2 });
    expect(few.body.detail).toContain('takes 3 inputs (x, scale, bias), got 2');
    const catalogue = (await app.inject({ method: 'GET', url: '/v1/ops' })).json() as { ops: { name: string; inputs: string[] }[] };
    expect(catalogue.ops.find((o) => o.name === 'layer_norm')!.inputs).toEqual(['x', 'scale?', 'bias?']);
  });
});

describe('max_pool ties', () => {
  it('sends the gradient to the first maximum of each window in row-major order, as PyTorch', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [1, 1, 2, 3], 'FP64');
    const y = x.maxPool([2, 2], { strides: [1, 1] }).as('y');
    const g = b.output(y).build();
    // windows [[1, 3], [3, 3]] and [[3, 2], [3, 3]]: first maxima at (0, 1) and (0, 1)
    const r = await vjp(g, { x: tensor('FP64', [1, 1, 2, 3], [1, 3, 2, 3, 3, 3]) }, { y: tensor('FP64', [1, 1, 1, 2], [1, 10]) }, ['x']);
    expect(Array.from(r.outputs.y!.data as Float64Array)).toEqual([3, 3]);
    expect(Array.from(r.gradients.x!.data as Float64Array)).toEqual([0, 11, 0, 0, 0, 0]);
  });
});

describe('GraphBuilder', () => {
  it('builds pooling and normalization layers whose gradients evaluate', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 4, 6, 6], 'FP64');
    const gs = b.input('gs', [4], 'FP64');
    const gb = b.input('gb', [4], 'FP64');
    const bs = b.input('bs', [4], 'FP64');
    const h = x.maxPool([2, 2], { pads: [[1, 1], [1, 1]], ceilMode: true })
      .groupNorm(2, gs, gb)
      .batchNorm(bs, gb, gb, gs, { training: true })
      .avgPool([3, 3], { strides: [2, 2], pads: [[1, 1], [1, 1]], countIncludePad: true });
    expect(h.shape).toEqual([2, 4, 2, 2]);
    const loss = h.layerNorm({ scale: b.input('ls', [2, 2], 'FP64'), axis: 2 }).rmsNorm().square().sum().as('loss');
    const g = b.output(loss).build();
    expect(g.nodes.map((n) => n.op)).toEqual(['max_pool', 'group_norm', 'batch_norm', 'avg_pool', 'layer_norm', 'rms_norm', 'square', 'sum']);
    expect(g.nodes[0]!.attrs).toEqual({ kernel_shape: [2, 2], pads: [[1, 1], [1, 1]], ceil_mode: true });
    const r = rng(3);
    const t = (shape: number[]) => tensor('FP64', shape, Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => r() + 0.5));
    const res = await grad(g, { x: t([2, 4, 6, 6]), gs: t([4]), gb: t([4]), bs: t([4]), ls: t([2, 2]) }, 'loss', ['x', 'gs', 'ls']);
    expect(res.gradients.x!.shape).toEqual([2, 4, 6, 6]);
    expect(res.gradients.ls!.shape).toEqual([2, 2]);
    expect(() => new GraphBuilder().input('x', [2, 3]).layerNorm({ bias: new GraphBuilder().input('b', [3]) })).toThrow(/bias only with a scale/);
  });
});

describe('derivative graphs for an unknown batch size', () => {
  it('give the same gradients as the direct transform for every op', async () => {
    const r = rng(4);
    const t = (shape: number[]) => tensor('FP64', shape, Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => 2 * r() - 1));
    const layers: [string, Record<string, unknown>, number[][]][] = [
      ['max_pool', { kernel_shape: [3], strides: [2], pads: [[1, 1]], ceil_mode: true }, []],
      ['avg_pool', { kernel_shape: [2], pads: [[1, 0]], count_include_pad: true }, []],
      ['group_norm', { groups: 2 }, [[4], [4]]],
      ['batch_norm', { training: true }, [[4], [4], [4], [4]]],
      ['layer_norm', { axis: 1 }, [[4, 7]]],
      ['rms_norm', {}, [[7]]],
    ];
    for (const [op, attrs, params] of layers) {
      const names = params.map((_, i) => `p${i}`);
      const graph = (batch: number | null): Graph => ({
        inputs: { x: { shape: [batch, 4, 7], datatype: 'FP64' }, ...Object.fromEntries(params.map((s, i) => [names[i]!, { shape: s, datatype: 'FP64' }])) },
        nodes: [{ name: 'y', op, inputs: ['x', ...names], attrs }, { name: 'loss', op: 'sum', inputs: ['y'] }],
        outputs: ['loss'],
      });
      const feeds = { x: t([3, 4, 7]), ...Object.fromEntries(params.map((s, i) => [names[i]!, t(s)])) };
      const wrt = ['x', ...names];
      const symbolic = transform(graph(null), { transform: 'grad', of: 'loss', wrt });
      const direct = await grad(graph(3), feeds, 'loss', wrt);
      const viaGraph = (await evaluate(symbolic, feeds)).outputs;
      for (const w of wrt) {
        const a = Array.from(viaGraph[`grad:${w}`]!.data as Float64Array);
        const d = Array.from(direct.gradients[w]!.data as Float64Array);
        a.forEach((v, i) => expect(v, `${op} grad:${w}[${i}]`).toBeCloseTo(d[i]!, 12));
      }
    }
  });
});

describe('group_norm derivative graphs with two unknown sizes', () => {
  it('ask for the sizes they need to view x by groups', () => {
    const graph: Graph = {
      inputs: { x: { shape: [null, 4, null], datatype: 'FP32' }, s: { shape: [4], datatype: 'FP32' }, b: { shape: [4], datatype: 'FP32' } },
      nodes: [{ name: 'y', op: 'group_norm', inputs: ['x', 's', 'b'], attrs: { groups: 2 } }, { name: 'l', op: 'sum', inputs: ['y'] }],
      outputs: ['l'],
    };
    expect(() => transform(graph, { transform: 'grad', of: 'l', wrt: ['x'] })).toThrow(expect.objectContaining({
      code: 'SHAPE_MISMATCH', message: expect.stringContaining('group_norm derivatives need the channel count and all but one of the batch and spatial sizes of x [None, 4, None]'),
    }));
  });
});

describe('batching rules', () => {
  it('batch every float input of every pooling and normalization sample: row k is the op on row k', async () => {
    const ops = ALL_OPS.filter((op) => /pool|norm/.test(op.name));
    let checked = 0;
    for (const op of ops) {
      for (const [k, s] of op.samples.entries()) {
        const r = rng(50 + k);
        const names = s.inputs.map((_, i) => `in${i}`);
        const inputs = Object.fromEntries(s.inputs.map((si, i) => [names[i]!, sampleTensor(si, r)]));
        const graph: Graph = {
          inputs: Object.fromEntries(names.map((n) => [n, { shape: [...inputs[n]!.shape], datatype: inputs[n]!.dtype }])),
          nodes: [{ name: 'out', op: op.name, inputs: names, attrs: (s.attrs ?? {}) as Record<string, unknown> }],
          outputs: ['out'],
        };
        const shapes = engine.shapes(graph, inputs).values;
        for (const seed of names) {
          const K = 3;
          // the first row is the sample itself, the others random (positive: batch_norm's var)
          const rows = [inputs[seed]!, ...[1, 2].map(() => sampleTensor({ ...s.inputs[names.indexOf(seed)]!, values: undefined, range: [0.5, 1.5] }, r))];
          const vm = vmapGraph(graph, [seed], shapes, K);
          const stacked = tensor('FP64', [K, ...rows[0]!.shape], rows.flatMap((t) => Array.from(t.data as Float64Array)));
          const batched = (await engine.evaluate(vm.graph, { ...inputs, [seed]: stacked })).outputs.out!;
          for (let b = 0; b < K; b++) {
            const one = (await engine.evaluate(graph, { ...inputs, [seed]: rows[b]! })).outputs.out!;
            const n = one.data.length;
            const got = Array.from(batched.data as Float64Array).slice(b * n, (b + 1) * n);
            got.forEach((v, i) => expect(v, `${op.name} #${k} seed ${seed} row ${b} [${i}]`).toBeCloseTo(Number(one.data[i]), 12));
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(30);
  });
});
