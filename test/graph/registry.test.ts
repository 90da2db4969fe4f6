/** The registry: one definition per name, complete against OPS.md v1, consistent catalogue. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ops } from '../../src/index.js';
import { ALL_OPS, OPS, duplicateOpNames } from '../../src/ops/registry.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Op names of the "v1 (required)" table of OPS.md: backticked names in the ops column. */
function v1OpNames(md: string): string[] {
  const section = md.split('## v1')[1]!.split('\n## ')[0]!;
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const cols = line.split('|');
    if (cols.length < 4) continue;
    // remarks in parentheses after a space ("(no grad to `cond`)") name arguments, not ops
    const opsCol = cols[2]!.replace(/ \([^()]*\)/g, '');
    for (const m of opsCol.matchAll(/`([a-z_0-9]+)(?=[`(])/g)) names.add(m[1]!);
  }
  return [...names];
}

describe('op registry', () => {
  test('no op name is defined twice', () => {
    expect(duplicateOpNames()).toEqual([]);
    expect(OPS.size).toBe(ALL_OPS.length);
  });

  test('every op exported by a file of src/ops is registered (a new family file cannot be forgotten)', async () => {
    const dir = join(repoRoot, 'src', 'ops');
    const registered = new Set(ALL_OPS);
    const missing: string[] = [];
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const mod = (await import(join(dir, f))) as Record<string, unknown>;
      const visit = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(visit);
        else if (typeof v === 'object' && v !== null && typeof (v as { infer?: unknown }).infer === 'function' && typeof (v as { run?: unknown }).run === 'function') {
          if (!registered.has(v as never)) missing.push(`${f}: ${(v as { name: string }).name}`);
        }
      };
      Object.values(mod).forEach(visit);
    }
    expect(missing).toEqual([]);
  });

  test('the internal ops derivative rules rely on are registered and hidden from the catalogue', () => {
    const listed = new Set(ops().map((o) => o.name));
    for (const name of ['sum_to_like', 'broadcast_like', 'reshape_like', 'zeros_like', 'ones_like']) {
      expect(OPS.get(name)?.internal, name).toBe(true);
      expect(listed.has(name), name).toBe(false);
    }
  });

  test('every OPS.md v1 op is in the catalogue', () => {
    const path = join(repoRoot, '..', 'shared', 'OPS.md');
    expect(existsSync(path), `${path} (shared/ sits beside the repository)`).toBe(true);
    const wanted = v1OpNames(readFileSync(path, 'utf8'));
    expect(wanted.length).toBeGreaterThan(50);
    const listed = new Set(ops().map((o) => o.name));
    expect(wanted.filter((n) => !listed.has(n))).toEqual([]);
  });

  test('catalogue entries carry JSON Schema attrs and the differentiability flag', () => {
    const cat = ops();
    const sum = cat.find((o) => o.name === 'sum')!;
    expect(sum.inputs).toEqual(['x']);
    expect(JSON.stringify(sum.attrs)).toContain('axes');
    expect(cat.find((o) => o.name === 'argmax')!.differentiable).toBe(false);
    expect(cat.find((o) => o.name === 'relu')!.differentiable).toBe(true);
    expect(cat.map((o) => o.name)).toEqual([...cat.map((o) => o.name)].sort((a, b) => a.localeCompare(b)));
  });
});
