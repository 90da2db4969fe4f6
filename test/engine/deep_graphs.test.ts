/**
 * Deep graphs: every analysis on the way from a request to its second derivatives walks the graph iteratively, so a
 * chain as long as GRADSERVE_MAX_NODES allows answers (a recursive walk overflowed the stack at a few thousand nodes
 * and the request got 500). Values are checked against the chain rule applied by hand along the chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shareableValues } from '../../src/autodiff/linear_plan.js';
import { engine } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor } from '../../src/tensor/tensor.js';
import type { GradserveApp } from '../../src/server/app.js';
import { makeApp } from '../server/helpers.js';

/** x -> sin -> tanh -> sin -> ... (n nodes) -> sum. */
function chain(n: number): Graph {
  const nodes: Graph['nodes'] = [];
  let prev = 'x';
  for (let i = 0; i < n; i++) {
    nodes.push({ name: `n${i}`, op: i % 2 === 0 ? 'sin' : 'tanh', inputs: [prev] });
    prev = `n${i}`;
  }
  nodes.push({ name: 'loss', op: 'sum', inputs: [prev] });
  return { inputs: { x: { shape: [2], datatype: 'FP64' } }, nodes, outputs: ['loss'] };
}

/** The chain's value, first and second derivative at x, by the chain rule: (f∘u)'' = f''(u)·u'^2 + f'(u)·u''. */
function reference(n: number, x: number): { y: number; d1: number; d2: number } {
  let y = x;
  let d1 = 1;
  let d2 = 0;
  for (let i = 0; i < n; i++) {
    let f: number;
    let f1: number;
    let f2: number;
    if (i % 2 === 0) {
      f = Math.sin(y);
      f1 = Math.cos(y);
      f2 = -f;
    } else {
      f = Math.tanh(y);
      f1 = 1 - f * f;
      f2 = -2 * f * f1;
    }
    d2 = f2 * d1 * d1 + f1 * d2;
    d1 = f1 * d1;
    y = f;
  }
  return { y, d1, d2 };
}

const N = 4000;
const X = [0.3, 0.5];
const close = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(b)));

describe('deep chains', () => {
  it('shareableValues walks a 100,000-node chain without recursion', () => {
    const g = chain(100_000);
    const names = ['loss', 'n99999', 'n0'];
    expect(shareableValues(g, { ...g, nodes: [...g.nodes] }, names)).toEqual(names);
    // a derived graph that differs at the root shares nothing downstream of it
    const changed = { ...g, nodes: g.nodes.map((n) => (n.name === 'n0' ? { ...n, op: 'cos' } : n)) };
    expect(shareableValues(g, changed, names)).toEqual([]);
  });

  it(`hessian of a ${N}-node chain is the chain rule's (the request limit is on the graph sent, not its derivative)`, async () => {
    const r = await engine.hessian(chain(N), { x: tensor('FP64', [2], X) }, 'loss', ['x'], { maxNodes: 10_000 });
    const [a, b] = X.map((x) => reference(N, x));
    const h = Array.from(r.hessians.x!.x!.data as Float64Array);
    close(h[0]!, a!.d2);
    close(h[3]!, b!.d2);
    expect([h[1], h[2]]).toEqual([0, 0]);
    close((r.outputs.loss!.data as Float64Array)[0]!, a!.y + b!.y);
  });
});

describe('deep chains over HTTP', () => {
  let app: GradserveApp;
  beforeAll(async () => {
    app = await makeApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it(`/v1/hvp of a ${N}-node chain answers 200 with the chain rule's values`, async () => {
    const res = await app.inject({
      method: 'POST', url: '/v1/hvp',
      payload: { graph: chain(N), inputs: { x: X }, of: 'loss', vectors: { x: [1, 0] } },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { gradients: { x: { data: number[] } }; hvp: { x: { data: number[] } } };
    const [a, b] = X.map((x) => reference(N, x));
    close(body.gradients.x.data[0]!, a!.d1);
    close(body.gradients.x.data[1]!, b!.d1);
    close(body.hvp.x.data[0]!, a!.d2);
    expect(body.hvp.x.data[1]).toBe(0);
  });
});
