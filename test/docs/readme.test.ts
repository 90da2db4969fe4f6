import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../src/errors.js';
import { GraphBuilder, grad, tensor } from '../../src/index.js';
import { opCatalogue } from '../../src/ops/registry.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`## ${title}\n`);
  expect(start, `README has a "## ${title}" section`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 3);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('README agrees with the code', () => {
  it('lists every op of the catalogue, and no op the catalogue lacks', () => {
    const ops = section('Ops');
    const table = ops.slice(ops.indexOf('| group |'), ops.indexOf('\nConventions'));
    const listed = new Set([...table.matchAll(/`([a-z_0-9]+)(?:\(|`)/g)].map((m) => m[1]));
    const names = opCatalogue().filter((o) => !o.internal).map((o) => o.name);
    for (const name of names) expect(listed, `README lists op ${name}`).toContain(name);
    // attribute names of any op, and the enum values the table quotes
    const attrNames = opCatalogue().flatMap((o) => Object.keys((o.attrs as { properties?: object }).properties ?? {}));
    const attrWords = new Set([...attrNames, 'none', 'tanh', 'mean', 'sum']);
    for (const word of listed) if (!attrWords.has(word)) expect(names, `README op ${word} exists`).toContain(word);
  });

  it('has every error code with its status', () => {
    const errors = section('Errors');
    for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
      expect(errors).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  it('runs its library example', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 2]);
    const w = b.input('w', [2, 3]);
    const loss = x.matmul(w).tanh().sum().as('loss');
    const graph = b.output(loss).build();
    const { gradients } = await grad(graph, {
      x: tensor('FP32', [1, 2], [0.5, -1]),
      w: tensor('FP32', [2, 3], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
    }, 'loss', ['w']);
    // d/dw sum(tanh(x·w)) = xᵀ · (1 - tanh(x·w)²), with x·w = [-0.35, -0.4, -0.45]
    const y = [-0.35, -0.4, -0.45];
    const expected = [0.5, -1].flatMap((xi) => y.map((yj) => xi * (1 - Math.tanh(yj) ** 2)));
    const got = Array.from(gradients.w!.data as Float32Array);
    got.forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 6));
  });
});
