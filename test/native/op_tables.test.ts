/**
 * The native op tables (native/op_tables.h, one X-macro list per family, listed by `info().ops`) against the op
 * registry: every kernel name an op runs exists natively, and every native entry is run by some op, so neither side
 * keeps a name the other lacks. The names an op uses are recorded by running every sample of every op.
 */
import { describe, expect, it } from 'vitest';
import { makeOpKernels } from '../../src/engine/executor.js';
import { kernels, type KernelOpNames } from '../../src/kernels.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { OpKernels } from '../../src/ops/types.js';
import { sampleTensor } from '../autodiff/opcheck_support.js';
import { rng } from '../support/random.js';

type Family = keyof KernelOpNames;
const FAMILIES: Family[] = ['unary', 'binary', 'reduce', 'argReduce', 'cumulative', 'matrixOp', 'spectral'];

/** Native entries no op of the registry runs, each with the reason it stays (none today). */
const UNUSED_BY_REGISTRY: Partial<Record<Family, Record<string, string>>> = {};

/** The kernel names every op's `run` passes to the name-selected kernels, over all registry samples. */
async function namesUsedByRegistry(): Promise<Record<Family, Map<string, string>>> {
  const used = Object.fromEntries(FAMILIES.map((f) => [f, new Map<string, string>()])) as Record<Family, Map<string, string>>;
  const real = makeOpKernels(kernels);
  for (const op of ALL_OPS) {
    const recording = new Proxy(real, {
      get(target, prop: string) {
        const fn = target[prop as keyof OpKernels] as (...a: unknown[]) => Promise<unknown>;
        if (!(FAMILIES as string[]).includes(prop)) return fn;
        return (...args: unknown[]) => {
          const map = used[prop as Family];
          if (!map.has(args[0] as string)) map.set(args[0] as string, op.name);
          return fn(...args);
        };
      },
    });
    for (const [k, s] of op.samples.entries()) {
      const r = rng(900 + k);
      await op.run(s.inputs.map((si) => sampleTensor(si, r)), op.attrs.parse(s.attrs ?? {}), recording);
    }
  }
  return used;
}

describe('native op tables', () => {
  const native = kernels.info().ops;

  it('lists every family, each name once', () => {
    for (const f of FAMILIES) {
      expect(native[f].length, f).toBeGreaterThan(0);
      expect(new Set(native[f]).size, `${f} names are unique`).toBe(native[f].length);
    }
  });

  it('has every kernel name the op registry runs, and no entry the registry does not run', async () => {
    const used = await namesUsedByRegistry();
    for (const f of FAMILIES) {
      const missing = [...used[f]].filter(([name]) => !native[f].includes(name)).map(([name, op]) => `${name} (run by ${op})`);
      expect(missing, `${f} names used by the registry but missing natively`).toEqual([]);
      const unused = native[f].filter((name) => !used[f].has(name) && UNUSED_BY_REGISTRY[f]?.[name] === undefined);
      expect(unused, `${f} entries of native/op_tables.h that no op runs`).toEqual([]);
    }
  });

  it('refuses a name outside the tables', () => {
    expect(() => kernels.unary('not_an_op', new Float64Array(1))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.binary('not_an_op', new Float64Array(1), [1], new Float64Array(1), [1])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.reduce('not_an_op', new Float64Array(1), [1], [0])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.argReduce('not_an_op', new Float64Array(1), [1], 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
