/** GraphBuilder writes API.md graph JSON fluently; the engine runs what it builds. */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, evaluate, grad, tensor } from '../../src/index.js';

describe('GraphBuilder', () => {
  test('x.matmul(w).add(b).relu() builds the wire graph', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 2]);
    const w = b.input('w', [2, 3]);
    const bias = b.input('b', [3]);
    const y = x.matmul(w).add(bias).relu().as('y');
    expect(y.shape).toEqual([null, 3]);
    expect(y.dtype).toBe('FP32');
    const g = b.output(y).build();
    expect(g.inputs).toEqual({ x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' }, b: { shape: [3], datatype: 'FP32' } });
    expect(g.nodes.map((n) => n.op)).toEqual(['matmul', 'add', 'relu']);
    expect(g.nodes[2]).toEqual({ name: 'y', op: 'relu', inputs: [g.nodes[1]!.name] });
    expect(g.nodes[1]!.inputs).toEqual([g.nodes[0]!.name, 'b']);
    expect(g.outputs).toEqual(['y']);
  });

  test('number operands become scalar constants of the other operand datatype; renames follow references', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const t = x.mul(2);
    const f = t.add(1).sum();
    t.as('twice');
    f.as('f');
    const g = b.output(f).build();
    const consts = Object.values(g.constants!);
    expect(consts).toEqual([{ shape: [], datatype: 'FP64', data: [2] }, { shape: [], datatype: 'FP64', data: [1] }]);
    expect(g.nodes.find((n) => n.op === 'add')!.inputs[0]).toBe('twice');
    const r = await grad(g, { x: tensor('FP64', [3], [1, 2, 3]) }, 'f', ['x']);
    expect([...r.outputs.f!.data]).toEqual([15]);
    expect([...r.gradients.x!.data]).toEqual([2, 2, 2]);
  });

  test('shape mistakes surface at build time; names must be unique; ops must exist', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 3]);
    expect(() => x.matmul(b.input('w', [4, 5]))).toThrow(/\[2, 3\]/);
    expect(() => b.input('x', [1])).toThrow(/already used/);
    expect(() => b.op('frobnicate', [x])).toThrow(/unknown op/);
    expect(() => x.neg().as('w')).toThrow(/already used/);
    expect(() => x.as('z')).toThrow(/only nodes/);
  });

  test('tensor constants, where, concat and a loss', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 2], 'FP64');
    const k = b.constant(tensor('FP64', [2, 2], [1, -1, 2, -2]), { name: 'k' });
    const sel = b.where(x.greater(0), x, k);
    const cat = b.concat([sel, x], 0).as('cat');
    const loss = cat.mse(0, 'sum').as('loss');
    const g = b.output(cat, loss).build();
    const { outputs } = await evaluate(g, { x: tensor('FP64', [2, 2], [3, -3, 0.5, -0.5]) });
    expect(outputs.cat!.shape).toEqual([4, 2]);
    expect([...outputs.cat!.data]).toEqual([3, -1, 0.5, -2, 3, -3, 0.5, -0.5]);
    expect(outputs.loss!.data[0]).toBeCloseTo(9 + 1 + 0.25 + 4 + 9 + 9 + 0.25 + 0.25, 12);
  });

  test('statistics, norms, scans and einsum', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 3], 'FP64');
    const w = b.input('w', [3, 2], 'FP64');
    const v = x.var(1, { correction: 1 }).as('v');
    const s = x.std(null, { keepdims: true }).as('s');
    const n = x.norm('inf', -1).as('n');
    const cs = x.cumsum(1, { exclusive: true }).as('cs');
    const cp = x.cumprod(-1, { reverse: true }).as('cp');
    const e = b.einsum('ij,jk->ik', x, w).as('e');
    const g = b.output(v, s, n, cs, cp, e).build();
    expect(g.nodes.map((nd) => nd.op)).toEqual(['var', 'std', 'norm', 'cumsum', 'cumprod', 'einsum']);
    expect(g.nodes[3]!.attrs).toEqual({ axis: 1, exclusive: true, reverse: false });
    expect(e.shape).toEqual([2, 2]);
    const { outputs } = await evaluate(g, { x: tensor('FP64', [2, 3], [1, 2, 3, 4, -6, 5]), w: tensor('FP64', [3, 2], [1, 0, 0, 1, 1, 1]) });
    expect([...outputs.v!.data]).toEqual([1, 37]);
    expect(outputs.s!.shape).toEqual([1, 1]);
    expect([...outputs.n!.data]).toEqual([3, 6]);
    expect([...outputs.cs!.data]).toEqual([0, 1, 3, 0, 4, -2]);
    expect([...outputs.cp!.data]).toEqual([6, 6, 3, -120, -30, 5]);
    expect([...outputs.e!.data]).toEqual([4, 5, 9, -1]);
  });
});
