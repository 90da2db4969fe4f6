import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { KernelFns } from '../../src/kernels.js';
import { fromTyped } from './reference.js';

const CODES = ['INVALID_ARGUMENT', 'INDEX_OUT_OF_RANGE', 'INVALID_CAST'];
const invalid = (f: () => unknown, msg?: RegExp) =>
  expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', ...(msg ? { message: expect.stringMatching(msg) } : {}) }));
// The typed signatures are the point of the contract; these tests deliberately call around them.
const k = kernels as unknown as Record<keyof KernelFns, (...args: unknown[]) => unknown>;

describe('argument validation', () => {
  it('rejects typed arrays of the wrong kind and non-arrays', () => {
    for (const bad of [[1, 2], new Uint16Array(2), new Uint8ClampedArray(2), new DataView(new ArrayBuffer(8)), null, undefined, 'x', {}]) {
      invalid(() => k.unary('neg', bad), /must be a Float32Array/);
      invalid(() => k.binary('add', bad, [2], new Float32Array(2), [2]));
      invalid(() => k.reduce('sum', bad, [2], [0]));
      invalid(() => k.cast(bad, 'FP32'));
    }
  });

  it('rejects lengths that do not match the shape, and malformed shapes', () => {
    invalid(() => k.binary('add', new Float32Array(3), [2], new Float32Array(2), [2]), /has 3 elements but its shape \[2\] needs 2/);
    invalid(() => k.transpose(new Float32Array(4), [2, 3], [1, 0]));
    for (const shape of [[1.5], [-1], [NaN], ['2'], 2, null, [2 ** 53 + 2], new Array(65).fill(1)]) {
      invalid(() => k.reduce('sum', new Float32Array(2), shape, []));
    }
  });

  it('rejects shapes whose element count overflows instead of wrapping', () => {
    // A zero-size dim makes huge siblings legal (as in NumPy); without it the product is rejected.
    expect(k.reduce('sum', new Float32Array(0), [2 ** 40, 2 ** 40, 0], [0])).toEqual(new Float32Array(0));
    invalid(() => k.reduce('sum', new Float32Array(1), [2 ** 40, 2 ** 40], []), /too many elements/);
    invalid(() => k.broadcastTo(new Float32Array(1), [1], [2 ** 31, 2 ** 31, 2 ** 31]), /too many elements/);
    invalid(() => k.binary('add', new Float32Array(1), [1], new Float32Array(1), [2 ** 30, 2 ** 30, 2 ** 30, 1]));
    invalid(() => k.oneHot(new Int32Array(4), [4], 2 ** 50, 0, 'FP32'));
    invalid(() => k.pad(new Float32Array(1), [1], [[2 ** 52, 2 ** 52]], 0));
    // Representable but far beyond memory: a clean error, not an abort.
    expect(() => k.broadcastTo(new Float32Array(1), [1], [2 ** 22, 2 ** 22, 2 ** 3])).toThrow(expect.objectContaining({ code: expect.any(String) }));
  });

  it('lets an exception thrown by an argument getter propagate, sync and async', async () => {
    const boom = new Error('getter threw');
    const shape = [2];
    Object.defineProperty(shape, 0, { get: () => { throw boom; } });
    expect(() => k.reduce('sum', new Float32Array(2), shape, [])).toThrow(boom);
    expect(() => k.pad(new Float32Array(2), [2], [shape], 0)).toThrow(boom);
    await expect((kernels.async.reduce as (...a: unknown[]) => Promise<unknown>)('sum', new Float32Array(2), shape, [])).rejects.toBe(boom);
    expect(fromTyped(kernels.unary('neg', new Float32Array([1])))).toEqual([-1]);
  });

  it('rejects bad axes, op names and flags', () => {
    invalid(() => k.softmax(new Float32Array(2), [2], -1, false));
    invalid(() => k.softmax(new Float32Array(2), [2], 0, 'yes'));
    invalid(() => k.argReduce('argmax', new Float32Array(2), [2], 1));
    invalid(() => k.argReduce('argmax', new Float32Array(2), [2], -1));
    invalid(() => k.argReduce('argmedian', new Float32Array(2), [2], null));
    invalid(() => k.reduce('median', new Float32Array(2), [2], [0]));
    invalid(() => k.binary('plus', new Float32Array(2), [2], new Float32Array(2), [2]));
    invalid(() => k.gather(new Float32Array(2), [2], new Int32Array(1), [1], 1));
    invalid(() => k.concat([new Float32Array(2)], [[2]], 1));
    invalid(() => k.matmul(new Float32Array(4), [2, 2], new Float32Array(4), [2, 2], 0, false));
    invalid(() => k.unary('neg'), /missing argument x/);
  });

  it('survives random garbage arguments to every kernel (each call returns or throws a coded Error)', () => {
    const pool: unknown[] = [
      undefined, null, 0, -1, 1, 2, 1.5, NaN, Infinity, 2 ** 60, 'exp', 'add', 'sum', 'argmax', 'FP32', 'INT64', true, {}, [],
      [0], [1], [2], [-1], [2, 2], [1, 0], [[1, 1]], [[0, 0], [0, 0]], [2 ** 40, 2 ** 40], [0, 2 ** 60],
      new Float32Array(4), new Float64Array(2), new Int32Array([0, 1, 5, -9]), new BigInt64Array(4), new Uint8Array([1, 0]),
      new Uint16Array(2), new Float32Array(0), [new Float32Array(2), new Int32Array(2)], [[2], [2]],
    ];
    const boom = new Error('getter threw');
    const trap = [1, 2];
    Object.defineProperty(trap, 1, { get: () => { throw boom; } });
    pool.push(trap, new Proxy([1, 2], {}));
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let threw = 0;
    for (const name of Object.keys(kernels.async) as (keyof KernelFns)[]) {
      for (let trial = 0; trial < 400; trial++) {
        const args = Array.from({ length: Math.floor(next() * 8) }, () => pool[Math.floor(next() * pool.length)]);
        try {
          k[name](...args);
        } catch (e) {
          threw++;
          expect(e).toBeInstanceOf(Error);
          if (e !== boom) expect(CODES).toContain((e as { code?: string }).code);
        }
      }
    }
    expect(threw).toBeGreaterThan(1000);
    expect(fromTyped(kernels.unary('neg', new Float32Array([1])))).toEqual([-1]);

    // Native programs: garbage in every method, in any order, also returns or throws a coded Error.
    const slotPool: unknown[] = [...pool, { slot: 0, length: 4 }, { slot: 1 }, { slot: -1, length: 2 }, { slot: 99 }, { slot: '0' }];
    const kernelNames = Object.keys(kernels.async);
    const methods = ['input', 'step', 'call', 'finish', 'run'] as const;
    let programThrew = 0;
    for (let trial = 0; trial < 300; trial++) {
      const p = new kernels.Program!();
      for (let m = 0; m < 6; m++) {
        const method = methods[Math.floor(next() * methods.length)]!;
        const args = Array.from({ length: Math.floor(next() * 4) }, () => slotPool[Math.floor(next() * slotPool.length)]);
        if (method === 'call' && next() < 0.7) args.splice(0, 2, kernelNames[Math.floor(next() * kernelNames.length)], args.slice(0, 6));
        if (method === 'input' && next() < 0.5) args.splice(0, 2, 'FP32', 4);
        try {
          (p[method] as (...a: unknown[]) => unknown)(...args);
        } catch (e) {
          programThrew++;
          expect(e).toBeInstanceOf(Error);
          if (e !== boom) expect(CODES).toContain((e as { code?: string }).code);
        }
      }
    }
    expect(programThrew).toBeGreaterThan(300);
  });
});
