/**
 * docs/ops.md agrees with the code: its reference tables are exactly what scripts/ops-doc.mjs renders from the op
 * registry, `GET /v1/ops` serves the same catalogue, and the ops it calls "not yet available" are refused as unknown.
 * (test/graph/registry.test.ts checks the group table and the planned list against the registry by name.)
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BEGIN, END, generatedBlock, renderOpTables, schemaType } from '../../scripts/ops-doc.mjs';
import type { OpCatalogueEntry } from '../../src/engine.types.js';
import { ALL_OPS, opCatalogue } from '../../src/ops/registry.js';
import { buildApp, type GradserveApp } from '../../src/server/app.js';

const md = readFileSync(new URL('../../docs/ops.md', import.meta.url), 'utf8');
const STALE = 'docs/ops.md is out of date with the op registry: run `node scripts/ops-doc.mjs`';

/** Backticked op names in the ops column of the "Not yet available" tables. */
function plannedOps(): string[] {
  const at = md.indexOf('\n## Not yet available');
  if (at < 0) return [];
  const section = md.slice(at);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .flatMap((l) => [...(l.split('|')[2] ?? '').matchAll(/`([a-z][a-z0-9_]*)`/g)].map((m) => m[1]!));
}

let app: GradserveApp;
beforeAll(async () => {
  app = await buildApp({ logger: false });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

describe('docs/ops.md', () => {
  it('has one generated block, and it is what the registry renders', () => {
    expect(md.split(BEGIN).length, 'one BEGIN marker').toBe(2);
    expect(md.split(END).length, 'one END marker').toBe(2);
    expect(generatedBlock(md), STALE).toBe(renderOpTables(ALL_OPS, opCatalogue()));
  });

  it('lists every op GET /v1/ops serves, with the same inputs, attrs and datatype rules', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/ops' });
    expect(res.statusCode).toBe(200);
    const served = (res.json() as { ops: OpCatalogueEntry[] }).ops;
    expect(served.map((o) => o.name).sort()).toEqual(ALL_OPS.map((o) => o.name).sort());
    // Rendering what the server sends over the wire gives the document as it is.
    expect(renderOpTables(ALL_OPS, served), STALE).toBe(generatedBlock(md));
    for (const op of served) expect(md, op.name).toContain(`| \`${op.name}\` |`);
  });

  it('every op it calls not yet available is 422 UNKNOWN_OP today', async () => {
    const planned = plannedOps();
    if (planned.length === 0) {
      // the op set is complete today: no list, so no page may point at one
      for (const page of ['../../docs/api.md', '../../README.md', '../../docs/ops.md']) {
        expect(readFileSync(new URL(page, import.meta.url), 'utf8'), page).not.toContain('#not-yet-available-planned-ops');
      }
    }
    for (const op of planned) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/shapes',
        payload: { graph: { inputs: { x: { shape: [2, 2] } }, nodes: [{ name: 'y', op, inputs: ['x'] }], outputs: ['y'] } },
      });
      expect(res.statusCode, `${op} is listed as not yet available in docs/ops.md but the server knows it`).toBe(422);
      expect(res.json()).toMatchObject({ code: 'UNKNOWN_OP', errors: [{ path: 'graph.nodes[0].op' }] });
    }
  });

  it('writes attribute schemas the way a reader thinks of them', () => {
    expect(schemaType({ anyOf: [{ type: 'integer' }, { type: 'array', items: { type: 'integer' } }, { type: 'null' }] })).toBe('int, int list or null');
    expect(schemaType({ type: ['number', 'null'] })).toBe('number or null');
    expect(schemaType({ type: 'string', enum: ['mean', 'sum', 'none'] })).toBe('`mean`, `sum` or `none`');
    expect(schemaType({ anyOf: [{ type: 'number', const: 1 }, { type: 'number', const: 2 }, { type: 'string', const: 'inf' }] })).toBe('`1`, `2` or `"inf"`');
    expect(schemaType({ type: 'array', items: { type: 'array', prefixItems: [{ type: 'integer' }, { type: 'integer' }] } })).toBe('[int, int] list');
  });
});
