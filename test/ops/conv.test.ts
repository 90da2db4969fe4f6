/**
 * conv and conv_transpose beyond the generic registry checks (test/autodiff/registry_ops.test.ts) and the PyTorch
 * fixtures: error codes, details and paths; the optional bias input; derivative graphs for unknown spatial sizes
 * (conv_input_grad) against the concrete ones, to second order; the GraphBuilder methods.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, grad, GraphBuilder, jvp, shapes, tensor, transform, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { failure } from '../support/errors.js';
import { rng } from '../support/random.js';

function convGraph(op: string, x: (number | null)[], w: number[], attrs: Record<string, unknown>, b?: number[], datatype = 'FP64'): Graph {
  return {
    inputs: { x: { shape: x, datatype }, w: { shape: w, datatype }, ...(b ? { b: { shape: b, datatype } } : {}) },
    nodes: [{ name: 'y', op, inputs: b ? ['x', 'w', 'b'] : ['x', 'w'], attrs }],
    outputs: ['y'],
  };
}

function specs(g: Graph): Record<string, { shape: number[]; datatype: string }> {
  return Object.fromEntries(Object.entries(g.inputs!).map(([k, v]) => [k, { shape: v.shape as number[], datatype: v.datatype! }]));
}

async function shapeError(op: string, x: number[], w: number[], attrs: Record<string, unknown>, b?: number[], datatype = 'FP64') {
  const g = convGraph(op, x, w, attrs, b, datatype);
  return failure(() => shapes(g, specs(g)));
}

function random(shape: number[], r: () => number): Tensor {
  return tensor('FP64', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * r() - 1));
}

describe('conv errors name the node, the attribute or input at fault, and the shapes', () => {
  const x = [2, 4, 5, 5], w = [6, 2, 3, 3];

  it('INVALID_ATTRS at the attribute', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['groups not dividing the channels', { groups: 3 }, 'groups', /node "y" \(conv\): groups 3 does not divide the 4 channels of x \(x \[2, 4, 5, 5\], w \[6, 2, 3, 3\]\)/],
      ['strides of the wrong length', { groups: 2, strides: [1, 1, 1] }, 'strides', /strides \[1, 1, 1\] has 3 entries for 2 spatial axes \(x \[2, 4, 5, 5\], w \[6, 2, 3, 3\]\)/],
      ['a zero stride', { groups: 2, strides: [1, 0] }, 'strides', /strides \[1, 0\] must be >= 1 .*spatial axis 1 has 0 \(x \[2, 4, 5, 5\], w \[6, 2, 3, 3\]\)/],
      ['a zero dilation', { groups: 2, dilations: 0 }, 'dilations', /dilations \[0, 0\] must be >= 1/],
      ['negative pads', { groups: 2, pads: [[0, 0], [1, -1]] }, 'pads', /pads \[\[0, 0\], \[1, -1\]\] must be >= 0 .*spatial axis 1 has \[1, -1\] \(x \[2, 4, 5, 5\], w \[6, 2, 3, 3\]\)/],
      ['pads of the wrong length', { groups: 2, pads: [[1, 1]] }, 'pads', /pads \[\[1, 1\]\] has 1 pairs for 2 spatial axes/],
      ['groups 0', { groups: 0 }, 'groups', /groups 0 must be >= 1/],
    ];
    for (const [what, attrs, attr, msg] of cases) {
      const e = await shapeError('conv', x, w, attrs);
      expect(e.code, what).toBe('INVALID_ATTRS');
      expect(e.message, what).toMatch(msg);
      expect(e.errors?.[0]?.path, what).toBe(`graph.nodes[0].attrs.${attr}`);
    }
  });

  it('refuses a flat list of pads (PyTorch and ONNX read it differently) and unknown attributes in the schema', async () => {
    for (const attrs of [{ pads: [1, 1] }, { padding: 1 }]) {
      const e = await shapeError('conv', x, w, { groups: 2, ...attrs });
      expect(e.code).toBe('INVALID_ATTRS');
      expect(e.errors?.[0]?.path).toMatch(/^graph\.nodes\[0\]\.attrs\.(pads|padding)/);
      // the message says what pads takes, not only that the input is invalid
      if ('pads' in attrs) expect(e.message).toMatch(/pads: must be one int for every side or \[\[before, after\], \.\.\.\].*flat list/);
    }
  });

  it('SHAPE_MISMATCH at the input', async () => {
    const cases: [string, number[], number[], Record<string, unknown>, number[] | undefined, string, RegExp][] = [
      ['w channel count', x, [6, 4, 3, 3], { groups: 2 }, undefined, 'inputs[1]', /w \[6, 4, 3, 3\] has 4 input channels per group, but x \[2, 4, 5, 5\] with groups 2 has C\/groups = 2/],
      ['kernel larger than the padded input', [2, 4, 2, 5], w, { groups: 2 }, undefined, 'inputs[0]', /x \[2, 4, 2, 5\] padded by \[0, 0\] spans 2 along spatial axis 0, less than the kernel of w \[6, 2, 3, 3\] dilated by 1 \(extent 3\)/],
      ['dilated kernel larger than the padded input', x, w, { groups: 2, dilations: [1, 3], pads: [[0, 0], [1, 0]] }, undefined, 'inputs[0]', /spans 6 along spatial axis 1, less than .* dilated by 3 \(extent 7\)/],
      ['ranks differ', [2, 4, 5], w, { groups: 2 }, undefined, 'inputs[0]', /x \[2, 4, 5\] must have rank 4 \(N, C and 2 spatial axes\) to match w \[6, 2, 3, 3\]/],
      ['too many spatial axes', [1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1], {}, undefined, 'inputs[1]', /w \[1, 1, 1, 1, 1, 1\] must be \(O, C\/groups, \*kernel\) with 1 to 3 spatial axes/],
      ['bias length', x, w, { groups: 2 }, [4], 'inputs[2]', /b \[4\] must have shape \[6\], one value per output channel/],
    ];
    for (const [what, xs, ws, attrs, b, at, msg] of cases) {
      const e = await shapeError('conv', xs, ws, attrs, b);
      expect(e.code, what).toBe('SHAPE_MISMATCH');
      expect(e.message, what).toMatch(/^node "y" \(conv\): /);
      expect(e.message, what).toMatch(msg);
      expect(e.errors?.[0]?.path, what).toBe(`graph.nodes[0].${at}`);
    }
  });

  it('conv_transpose: w channels, groups, output_padding and an output cropped away', async () => {
    const e1 = await shapeError('conv_transpose', [1, 4, 3, 3], [3, 2, 3, 3], {});
    expect(e1).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'graph.nodes[0].inputs[1]' }] });
    expect(e1.message).toMatch(/w \[3, 2, 3, 3\] must have the 4 channels of x \[1, 4, 3, 3\] first: w is \(C, O\/groups, \*kernel\)/);
    const e2 = await shapeError('conv_transpose', [1, 4, 3, 3], [4, 2, 3, 3], { groups: 3 });
    expect(e2).toMatchObject({ code: 'INVALID_ATTRS', errors: [{ path: 'graph.nodes[0].attrs.groups' }] });
    const e3 = await shapeError('conv_transpose', [1, 4, 3, 3], [4, 2, 3, 3], { strides: [2, 1], dilations: [1, 3], output_padding: [1, 3] });
    expect(e3).toMatchObject({ code: 'INVALID_ATTRS', errors: [{ path: 'graph.nodes[0].attrs.output_padding' }] });
    expect(e3.message).toMatch(/output_padding \[1, 3\] must be less than max\(stride, dilation\) on every spatial axis; axis 1 has 3 with stride 1 and dilation 3/);
    const e4 = await shapeError('conv_transpose', [1, 4, 1, 3], [4, 2, 1, 3], { pads: [[1, 0], [0, 0]] });
    expect(e4).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'graph.nodes[0].inputs[0]' }] });
    expect(e4.message).toMatch(/gives 0 output positions along spatial axis 0/);
    const e5 = await shapeError('conv_transpose', [1, 4, 3, 3], [4, 2, 3, 3], {}, [4]);
    expect(e5).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'graph.nodes[0].inputs[2]' }] });
  });

  it('datatypes: FP only, all inputs alike', async () => {
    expect(await shapeError('conv', x, w, { groups: 2 }, undefined, 'INT32')).toMatchObject({ code: 'DATATYPE_MISMATCH' });
    const g: Graph = { ...convGraph('conv', x, w, { groups: 2 }), inputs: { x: { shape: x, datatype: 'FP32' }, w: { shape: w, datatype: 'FP64' } } };
    expect(await failure(() => shapes(g, specs(g)))).toMatchObject({ code: 'DATATYPE_MISMATCH' });
  });

  it('takes 2 or 3 inputs', async () => {
    for (const inputs of [['x'], ['x', 'w', 'w', 'w']]) {
      const g: Graph = { inputs: { x: { shape: x, datatype: 'FP32' }, w: { shape: w, datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'conv', inputs, attrs: { groups: 2 } }], outputs: ['y'] };
      const e = await failure(() => shapes(g, specs(g)));
      expect(e).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'graph.nodes[0].inputs' }] });
      expect(e.message).toContain('takes 2 to 3 inputs (x, w, b?)');
    }
  });
});

describe('derivative graphs for unknown spatial sizes', () => {
  // x (N, 3, H, W) with N, H and W unknown: the x gradient needs an output padding that depends on H and W
  const symbolic: Graph = {
    inputs: { x: { shape: [null, 3, null, null], datatype: 'FP64' }, w: { shape: [4, 3, 3, 2], datatype: 'FP64' }, b: { shape: [4], datatype: 'FP64' } },
    nodes: [
      { name: 'c', op: 'conv', inputs: ['x', 'w', 'b'], attrs: { strides: [2, 3], pads: [[1, 0], [0, 1]], dilations: [1, 2] } },
      { name: 't', op: 'tanh', inputs: ['c'] },
      { name: 'u', op: 'conv_transpose', inputs: ['t', 'w'], attrs: { strides: [1, 2], dilations: [2, 1], output_padding: [1, 1] } },
      { name: 's', op: 'square', inputs: ['u'] },
      { name: 'loss', op: 'sum', inputs: ['s'] },
    ],
    outputs: ['loss'],
  };

  it('use conv_input_grad there, and agree with the graphs built for each concrete size', async () => {
    const back = transform(symbolic, { transform: 'grad', of: 'loss', wrt: ['x', 'w', 'b'] });
    expect(back.nodes.map((n) => n.op)).toContain('conv_input_grad');
    const r = rng(7);
    for (const [h, w] of [[7, 9], [6, 8], [9, 4]] as const) {
      const inputs = { x: random([2, 3, h, w], r), w: random([4, 3, 3, 2], r), b: random([4], r) };
      const viaSymbolic = (await evaluate(back, inputs)).outputs;
      const concrete = await grad(symbolic, inputs, 'loss', ['x', 'w', 'b']);
      for (const k of ['x', 'w', 'b']) {
        expect(viaSymbolic[`grad:${k}`]!.shape).toEqual(inputs[k as 'x'].shape);
        const a = viaSymbolic[`grad:${k}`]!.data, e = concrete.gradients[k]!.data;
        for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(Number(e[i]), 12);
      }
    }
  });

  it('differentiate again: a JVP of the symbolic gradient graph equals the concrete one', async () => {
    const back = transform(symbolic, { transform: 'grad', of: 'loss', wrt: ['x', 'w'] });
    const second = transform(back, { transform: 'jvp', wrt: ['x', 'w'], of: ['grad:x', 'grad:w'] });
    expect(second.nodes.map((n) => n.op)).toEqual(expect.arrayContaining(['conv_input_grad', 'conv_weight_grad', 'conv', 'conv_transpose']));
    const r = rng(8);
    const inputs = { x: random([1, 3, 8, 7], r), w: random([4, 3, 3, 2], r), b: random([4], r) };
    const tangents = { x: random([1, 3, 8, 7], r), w: random([4, 3, 3, 2], r) };
    const viaSymbolic = (await evaluate(second, { ...inputs, 'tangent:x': tangents.x, 'tangent:w': tangents.w })).outputs;
    const concreteBack = transform({ ...symbolic, inputs: { ...symbolic.inputs, x: { shape: [1, 3, 8, 7], datatype: 'FP64' } } }, { transform: 'grad', of: 'loss', wrt: ['x', 'w'] });
    expect(concreteBack.nodes.map((n) => n.op)).not.toContain('conv_input_grad');
    const concrete = await jvp(concreteBack, inputs, tangents, ['grad:x', 'grad:w']);
    for (const k of ['grad:x', 'grad:w']) {
      const a = viaSymbolic[`tangent:${k}`]!.data, e = concrete.tangents[k]!.data;
      expect(a.length).toBe(e.length);
      for (let i = 0; i < e.length; i++) expect(a[i]).toBeCloseTo(Number(e[i]), 10);
    }
  });
});

describe('the bias is optional', () => {
  it('conv without b equals conv with zero b; its VJP has no b gradient to give', async () => {
    const r = rng(9);
    const x = random([1, 2, 4, 4], r), w = random([3, 2, 2, 2], r);
    const without = (await evaluate(convGraph('conv', [1, 2, 4, 4], [3, 2, 2, 2], { pads: 1 }), { x, w })).outputs.y!;
    const withZero = (await evaluate(convGraph('conv', [1, 2, 4, 4], [3, 2, 2, 2], { pads: 1 }, [3]), { x, w, b: tensor('FP64', [3], [0, 0, 0]) })).outputs.y!;
    expect([...without.data]).toEqual([...withZero.data]);
    const cot = random(without.shape as number[], r);
    const g = await vjp(convGraph('conv', [1, 2, 4, 4], [3, 2, 2, 2], { pads: 1 }, [3]), { x, w, b: tensor('FP64', [3], [1, 2, 3]) }, { y: cot }, ['b']);
    // d<cot, y>/db_o = sum of cot over the images and positions of channel o
    const per = without.shape[2]! * without.shape[3]!;
    const want = [0, 1, 2].map((o) => Array.from(cot.data as Float64Array).slice(o * per, (o + 1) * per).reduce((a, v) => a + v, 0));
    [...g.gradients.b!.data].forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
  });
});

describe('GraphBuilder', () => {
  it('x.conv(w, opts) and x.convTranspose(w, opts) write the nodes with the given attrs only, and infer shapes', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 3, 8, 8], 'FP64');
    const w = b.input('w', [6, 1, 3, 3], 'FP64');
    const bias = b.input('b', [6], 'FP64');
    const wt = b.input('wt', [6, 2, 2, 2], 'FP64');
    const y = x.conv(w, { bias, strides: 2, pads: [[1, 1], [0, 1]], groups: 3 }).as('y');
    expect(y.shape).toEqual([null, 6, 4, 4]);
    const z = y.relu().convTranspose(wt, { strides: [2, 2], outputPadding: 1 }).as('z');
    expect(z.shape).toEqual([null, 2, 9, 9]);
    const g = b.output(y, z).build();
    expect(g.nodes[0]).toEqual({ name: 'y', op: 'conv', inputs: ['x', 'w', 'b'], attrs: { strides: 2, pads: [[1, 1], [0, 1]], groups: 3 } });
    expect(g.nodes[2]).toMatchObject({ name: 'z', op: 'conv_transpose', attrs: { strides: [2, 2], output_padding: 1 } });
    expect(x.conv(w, { groups: 3 }).shape).toEqual([null, 6, 6, 6]);
    expect(() => x.conv(w)).toThrow(/groups 1|C\/groups/);
    const r = rng(10);
    const out = await evaluate(g, { x: random([2, 3, 8, 8], r), w: random([6, 1, 3, 3], r), b: random([6], r), wt: random([6, 2, 2, 2], r) });
    expect(out.outputs.z!.shape).toEqual([2, 2, 9, 9]);
  });
});
