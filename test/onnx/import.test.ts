/**
 * POST /v1/import/onnx and the importer's rules (API.md "Models by reference and imported models"): every error path
 * (empty, garbage, truncated, external data: INVALID_MODEL; unknown opset, unsupported ops: UNSUPPORTED_MODEL listing
 * every such node), ONNX semantics where they differ from NumPy, folding of shape subgraphs, `?dims`, `?weights`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/index.js';
import { encodeModel, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/decode.js';
import { importOnnx } from '../../src/onnx/import.js';
import type { GradserveApp } from '../../src/server/app.js';
import { tensor } from '../../src/tensor/tensor.js';
import { makeApp } from '../server/helpers.js';

const FLOAT = 1;
const INT64 = 7;
const FLOAT16 = 10;

type Dim = number | string;
const f32 = (b64: string) => Array.from(new Float32Array(Uint8Array.from(Buffer.from(b64, 'base64')).buffer));
const vi = (name: string, elem: number, dims: Dim[]) => ({
  name,
  type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
});
const node = (op: string, inputs: string[], outputs: string[], attrs: Record<string, unknown>[] = [], name = outputs[0]): NodeProto =>
  ({ op_type: op, input: inputs, output: outputs, name, attribute: attrs }) as NodeProto;
const floats = (name: string, dims: number[], data: number[]): TensorProto => ({ name, dims, data_type: FLOAT, float_data: data });
const ints = (name: string, dims: number[], data: number[]): TensorProto => ({ name, dims, data_type: INT64, int64_data: data });

function model(nodes: NodeProto[], opts: { inputs?: ReturnType<typeof vi>[]; outputs?: ReturnType<typeof vi>[]; init?: TensorProto[]; opset?: number } = {}): Uint8Array {
  const m: ModelProto = {
    ir_version: 8,
    opset_import: [{ domain: '', version: opts.opset ?? 17 }],
    producer_name: 'test',
    graph: {
      name: 'g',
      node: nodes,
      input: opts.inputs ?? [vi('x', FLOAT, [2, 3])],
      output: opts.outputs ?? [vi('y', FLOAT, [])],
      initializer: opts.init ?? [],
    },
  };
  return encodeModel(m);
}

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

const send = (body: Uint8Array | Buffer, query = '', type = 'application/onnx', headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/v1/import/onnx${query}`, payload: Buffer.from(body), headers: { 'content-type': type, ...headers } });

const linear = () => model([node('MatMul', ['x', 'w'], ['xw']), node('Add', ['xw', 'b'], ['y'])], {
  init: [floats('w', [3, 2], [1, 2, 3, 4, 5, 6]), floats('b', [2], [0.5, -0.5])],
  outputs: [vi('y', FLOAT, [2, 2])],
});

describe('POST /v1/import/onnx', () => {
  it('returns the graph and its parameters, keeping the ONNX names', async () => {
    const r = await send(linear());
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.graph.inputs).toEqual({ x: { shape: [2, 3], datatype: 'FP32' }, w: { shape: [3, 2], datatype: 'FP32' }, b: { shape: [2], datatype: 'FP32' } });
    expect(b.graph.outputs).toEqual(['y']);
    expect(b.graph.nodes.map((n: { op: string }) => n.op)).toEqual(['matmul', 'add']);
    expect(b.parameters).toEqual({ w: { shape: [3, 2], datatype: 'FP32' }, b: { shape: [2], datatype: 'FP32' } });
    // the translated graph runs on the /v1 endpoints as it is
    const ev = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: b.graph, inputs: { x: [[1, 0, 0], [0, 1, 0]], w: [[1, 2], [3, 4], [5, 6]], b: [0.5, -0.5] } } });
    expect(ev.json().outputs.y.data).toEqual([1.5, 1.5, 3.5, 3.5]);
  });

  it('?weights=b64 adds the values, ?weights=binary frames them', async () => {
    const b64 = (await send(linear(), '?weights=b64')).json();
    expect(f32(b64.parameters.w.b64)).toEqual([1, 2, 3, 4, 5, 6]);
    const bin = await send(linear(), '?weights=binary', 'application/octet-stream');
    expect(bin.statusCode).toBe(200);
    const n = Number(bin.headers['inference-header-content-length']);
    const head = JSON.parse(bin.rawPayload.subarray(0, n).toString('utf8'));
    const w = head.parameters.w;
    expect(w.binary_data_size).toBe(24);
    const at = n + w.binary_data_offset;
    expect(Array.from(new Float32Array(bin.rawPayload.buffer.slice(bin.rawPayload.byteOffset + at, bin.rawPayload.byteOffset + at + 24)))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('widens FP16 initializers to FP32 and says so', async () => {
    // 1.0 and -2.0 in IEEE half precision
    const half: TensorProto = { name: 'h', dims: [2], data_type: FLOAT16, int32_data: [0x3c00, 0xc000] };
    const r = await send(model([node('Mul', ['x', 'h'], ['y'])], { inputs: [vi('x', FLOAT, [2])], init: [half], outputs: [vi('y', FLOAT, [2])] }), '?weights=b64');
    expect(r.statusCode).toBe(200);
    expect(r.json().notes).toEqual(['initializer h: FLOAT16 widened to FP32']);
    expect(f32(r.json().parameters.h.b64)).toEqual([1, -2]);
  });

  it.each([
    ['empty', Buffer.alloc(0), /empty/],
    ['garbage', Buffer.from('this is not an onnx file at all, just text'), /not an ONNX model/],
    ['truncated', Buffer.from(linear()).subarray(0, 40), /not an ONNX model/],
    ['a protobuf without a graph', Buffer.from([8, 7, 18, 0]), /no graph/],
  ])('%s bytes: 400 INVALID_MODEL', async (_what, body, msg) => {
    const r = await send(body);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: 'INVALID_MODEL', detail: expect.stringMatching(msg) });
  });

  it('a model with external data: 400 INVALID_MODEL', async () => {
    const ext: TensorProto = { name: 'w', dims: [3, 2], data_type: FLOAT, data_location: 1, external_data: [{ key: 'location', value: 'weights.bin' }] };
    const r = await send(model([node('MatMul', ['x', 'w'], ['y'])], { init: [ext] }));
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: 'INVALID_MODEL', detail: expect.stringContaining('external data') });
  });

  it('an unknown opset: 422 UNSUPPORTED_MODEL at opset_import', async () => {
    const r = await send(model([node('Relu', ['x'], ['y'])], { opset: 99 }));
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'UNSUPPORTED_MODEL', errors: [{ path: 'opset_import[0]', message: expect.stringContaining('opset 99') }] });
  });

  it('lists every node it cannot express, not only the first, and imports nothing', async () => {
    const r = await send(model([
      node('Relu', ['x'], ['a']),
      node('LSTM', ['a'], ['b'], [], 'rnn'),
      node('Resize', ['a'], ['c'], [], 'up'),
      node('Pad', ['a', 'p'], ['d'], [{ name: 'mode', type: 3, s: Buffer.from('reflect') }], 'pad'),
      node('Add', ['b', 'c'], ['y']),
    ], { init: [ints('p', [4], [0, 1, 0, 1])] }));
    expect(r.statusCode).toBe(422);
    expect(r.json().code).toBe('UNSUPPORTED_MODEL');
    expect(r.json().errors).toEqual([
      { path: 'graph.node[1]', message: 'LSTM node rnn: not supported by the importer' },
      { path: 'graph.node[2]', message: 'Resize node up: not supported by the importer' },
      { path: 'graph.node[3]', message: 'Pad node pad: mode "reflect" (gradserve pads with a constant)' },
    ]);
  });

  it('an auto_pad the ONNX spec does not define is unsupported, not read as NOTSET', async () => {
    const ints2 = (name: string, v: number[]) => ({ name, type: 7, ints: v });
    const r = await send(model([
      node('Conv', ['x', 'w'], ['y'], [{ name: 'auto_pad', type: 3, s: Buffer.from('FOO') }, ints2('kernel_shape', [3, 3])], 'conv'),
    ], { inputs: [vi('x', FLOAT, [1, 1, 5, 5])], outputs: [vi('y', FLOAT, [1, 1, 5, 5])], init: [floats('w', [1, 1, 3, 3], new Array(9).fill(1))] }));
    expect(r.statusCode).toBe(422);
    expect(r.json().errors).toEqual([{ path: 'graph.node[0]', message: 'Conv node conv: auto_pad "FOO" is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER' }]);
  });

  it('refuses other content types and a framed body with 400 INVALID_REQUEST', async () => {
    expect((await send(linear(), '', 'application/json')).json()).toMatchObject({ code: 'INVALID_REQUEST' });
    const framed = await send(linear(), '', 'application/octet-stream', { 'inference-header-content-length': '4' });
    expect(framed.statusCode).toBe(400);
    expect(framed.json().detail).toContain('Inference-Header-Content-Length');
    expect((await send(linear(), '?dims=batch')).json()).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'dims' }] });
  });
});

describe('import rules', () => {
  const run = async (bytes: Uint8Array, inputs: Record<string, ReturnType<typeof tensor>>, opts = {}) => {
    const { graph, parameters } = importOnnx(bytes, opts);
    return (await evaluate(graph, { ...parameters, ...inputs })).outputs;
  };
  const x23 = tensor('FP32', [2, 3], [1, 2, 3, 4, 5, 6]);

  it('folds a Shape-driven Reshape, and ?dims fixes a symbolic batch dimension', async () => {
    // y = reshape(x, concat(shape(x)[0:1], [-1])): the exporter's flatten
    const nodes = [
      node('Shape', ['x'], ['s']),
      node('Gather', ['s', 'zero'], ['n']),
      node('Unsqueeze', ['n', 'axes0'], ['n1']),
      node('Concat', ['n1', 'minus1'], ['target'], [{ name: 'axis', type: 2, i: 0 }]),
      node('Reshape', ['x', 'target'], ['y']),
    ];
    const init = [ints('zero', [], [0]), ints('axes0', [1], [0]), ints('minus1', [1], [-1])];
    const fixed = model(nodes, { init, inputs: [vi('x', FLOAT, [2, 3, 1])] });
    const { graph } = importOnnx(fixed);
    expect(graph.nodes).toEqual([{ name: 'y', op: 'reshape', inputs: ['x'], attrs: { shape: [2, -1] } }]);
    // With a symbolic batch the target [batch, -1] has two unknowns: refused, then fixed with ?dims.
    const sym = model(nodes, { init, inputs: [vi('x', FLOAT, ['batch', 3, 'len'])] });
    expect(() => importOnnx(sym)).toThrow(/symbolic dimension/);
    const out = await run(sym, { x: tensor('FP32', [2, 3, 1], [1, 2, 3, 4, 5, 6]) }, { dims: { batch: 2, len: 1 } });
    expect(out.y!.shape).toEqual([2, 3]);
    // One unknown entry and no -1: the unknown one is the reshape's -1
    const keep = model([node('Shape', ['x'], ['s']), node('Reshape', ['x', 's'], ['y'])], { inputs: [vi('x', FLOAT, ['batch', 3])] });
    expect(importOnnx(keep).graph.nodes[0]!.attrs).toEqual({ shape: [-1, 3] });
  });

  it('Reshape: 0 copies the input dimension (ONNX), unless allowzero', async () => {
    const out = await run(model([node('Reshape', ['x', 's'], ['y'])], { init: [ints('s', [2], [0, -1])] }), { x: x23 });
    expect(out.y!.shape).toEqual([2, 3]);
  });

  it('Expand broadcasts both ways', async () => {
    const out = await run(model([node('Expand', ['x', 's'], ['y'])], { init: [ints('s', [3], [2, 1, 1])], inputs: [vi('x', FLOAT, [3, 1])] }), { x: tensor('FP32', [3, 1], [1, 2, 3]) });
    expect(out.y!.shape).toEqual([2, 3, 1]);
  });

  it('Gemm: transA, transB, alpha, beta', async () => {
    const attrs = [{ name: 'transA', type: 2, i: 1 }, { name: 'transB', type: 2, i: 1 }, { name: 'alpha', type: 1, f: 2 }, { name: 'beta', type: 1, f: 0.5 }];
    const bytes = model([node('Gemm', ['a', 'b', 'c'], ['y'], attrs)], {
      inputs: [vi('a', FLOAT, [2, 1]), vi('b', FLOAT, [1, 2])], init: [floats('c', [1], [4])], outputs: [vi('y', FLOAT, [1, 1])],
    });
    const out = await run(bytes, { a: tensor('FP32', [2, 1], [1, 2]), b: tensor('FP32', [1, 2], [3, 4]) });
    // aᵀ = [[1, 2]], bᵀ = [[3], [4]]: 2 * 11 + 0.5 * 4
    expect(Array.from(out.y!.data as Float32Array)).toEqual([24]);
  });

  it('ArgMax defaults to axis 0 with kept dims; OneHot counts negative indices from the end', async () => {
    const am = await run(model([node('ArgMax', ['x'], ['y'])]), { x: x23 });
    expect(am.y!.shape).toEqual([1, 3]);
    const oh = await run(model([node('OneHot', ['i', 'depth', 'vals'], ['y'])], {
      inputs: [vi('i', INT64, [2])], init: [ints('depth', [], [3]), floats('vals', [2], [0, 5])],
    }), { i: tensor('INT64', [2], [-1, 0]) });
    expect(Array.from(oh.y!.data as Float32Array)).toEqual([0, 0, 5, 5, 0, 0]);
  });

  it('Softmax before opset 13 works on the input flattened at axis 1', async () => {
    const old = await run(model([node('Softmax', ['x'], ['y'])], { opset: 11, inputs: [vi('x', FLOAT, [1, 2, 2])] }), { x: tensor('FP32', [1, 2, 2], [0, 0, 0, 0]) });
    expect(Array.from(old.y!.data as Float32Array)).toEqual([0.25, 0.25, 0.25, 0.25]);
    const now = await run(model([node('Softmax', ['x'], ['y'])], { opset: 13, inputs: [vi('x', FLOAT, [1, 2, 2])] }), { x: tensor('FP32', [1, 2, 2], [0, 0, 0, 0]) });
    expect(Array.from(now.y!.data as Float32Array)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('Pow with an integer exponent takes negative bases', async () => {
    const out = await run(model([node('Pow', ['x', 'e'], ['y'])], { init: [ints('e', [], [3])] }), { x: tensor('FP32', [2, 3], [-2, -1, 0, 1, 2, 3]) });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([-8, -1, 0, 1, 8, 27]);
  });

  it('makes integer initializers constants and floating-point ones parameters', () => {
    const { graph, parameters } = importOnnx(model([node('Gather', ['w', 'i'], ['y'])], { inputs: [], init: [floats('w', [3], [1, 2, 3]), ints('i', [2], [2, 0])] }));
    expect(Object.keys(parameters)).toEqual(['w']);
    expect(Object.keys(graph.constants ?? {})).toEqual(['i']);
  });
});
