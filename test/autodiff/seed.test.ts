/**
 * The seed notes' worked example, verbatim: a linear layer y = x·w with N = 1, D = 2, M = 3. Given dL/dy, reverse
 * mode must give dL/dx = dL/dy·wᵀ and dL/dw = xᵀ·dL/dy without forming the Jacobian.
 */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, evaluate, grad, tensor, transform, vjp } from '../../src/index.js';

const x = [1.5, -2];
const w = [0.5, -1, 2, 3, 0.25, -0.75];
const dy = [0.1, -0.2, 0.3];

function linear() {
  const b = new GraphBuilder();
  const xv = b.input('x', [1, 2], 'FP64');
  const wv = b.input('w', [2, 3], 'FP64');
  return b.output(xv.matmul(wv).as('y')).build();
}

describe('seed example: linear layer N=1, D=2, M=3', () => {
  const inputs = { x: tensor('FP64', [1, 2], x), w: tensor('FP64', [2, 3], w) };

  test('forward y = x·w', async () => {
    const { outputs } = await evaluate(linear(), inputs);
    const y = [0, 1, 2].map((j) => x[0]! * w[j]! + x[1]! * w[3 + j]!);
    expect(outputs.y!.shape).toEqual([1, 3]);
    expect([...outputs.y!.data]).toEqual(y);
  });

  test('dL/dx = dy·wᵀ and dL/dw = xᵀ·dy', async () => {
    const r = await vjp(linear(), inputs, { y: tensor('FP64', [1, 3], dy) }, ['x', 'w']);
    const dx = [0, 1].map((i) => dy[0]! * w[3 * i]! + dy[1]! * w[3 * i + 1]! + dy[2]! * w[3 * i + 2]!);
    const dw = [0, 1].flatMap((i) => [0, 1, 2].map((j) => x[i]! * dy[j]!));
    expect(r.gradients.x!.shape).toEqual([1, 2]);
    expect(r.gradients.w!.shape).toEqual([2, 3]);
    [...r.gradients.x!.data].forEach((v, i) => expect(v).toBeCloseTo(dx[i]!, 14));
    [...r.gradients.w!.data].forEach((v, i) => expect(v).toBeCloseTo(dw[i]!, 14));
    expect([...r.outputs.y!.data].length).toBe(3);
  });

  test('grad of sum(y) is the vjp with dy = ones', async () => {
    const b = new GraphBuilder();
    const y = b.input('x', [1, 2], 'FP64').matmul(b.input('w', [2, 3], 'FP64')).as('y');
    const g = b.output(y.sum().as('loss')).build();
    const r = await grad(g, inputs, 'loss', ['x', 'w']);
    expect([...r.gradients.x!.data]).toEqual([w[0]! + w[1]! + w[2]!, w[3]! + w[4]! + w[5]!]);
    expect([...r.gradients.w!.data]).toEqual([x[0]!, x[0]!, x[0]!, x[1]!, x[1]!, x[1]!]);
    expect([...r.outputs.loss!.data]).toHaveLength(1);
  });

  test('the transformed graph evaluates to the same numbers', async () => {
    const d = transform(linear(), { transform: 'vjp', of: ['y'], wrt: ['x', 'w'] });
    expect(d.outputs).toEqual(['grad:x', 'grad:w']);
    expect(Object.keys(d.inputs!)).toContain('cotangent:y');
    const direct = await vjp(linear(), inputs, { y: tensor('FP64', [1, 3], dy) }, ['x', 'w']);
    const viaGraph = await evaluate(d, { ...inputs, 'cotangent:y': tensor('FP64', [1, 3], dy) });
    expect([...viaGraph.outputs['grad:x']!.data]).toEqual([...direct.gradients.x!.data]);
    expect([...viaGraph.outputs['grad:w']!.data]).toEqual([...direct.gradients.w!.data]);
  });
});
