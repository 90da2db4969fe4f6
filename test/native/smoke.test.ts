import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';

describe('native addon smoke', () => {
  it('reports its build', () => {
    const info = kernels.info();
    expect(typeof info.blas).toBe('string');
    expect(info.cblas).toBe(info.blas.includes('cblas'));
    expect(['avx512f', 'avx2+fma', 'sse2']).toContain(info.simd);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('runs a kernel of each family', async () => {
    expect(Array.from(kernels.unary('neg', new Float32Array([1, -2])) as Float32Array)).toEqual([-1, 2]);
    const r = kernels.binary('add', new Float64Array([1, 2, 3]), [3], new Float64Array([10]), [1]);
    expect(r.shape).toEqual([3]);
    expect(Array.from(r.data as Float64Array)).toEqual([11, 12, 13]);
    const m = kernels.matmul(new Float32Array([1, 2, 3, 4]), [2, 2], new Float32Array([5, 6, 7, 8]), [2, 2], false, false);
    expect(Array.from(m.data as Float32Array)).toEqual([19, 22, 43, 50]);
    expect(Array.from(kernels.reduce('sum', new Int32Array([1, 2, 3, 4]), [2, 2], [1]) as Int32Array)).toEqual([3, 7]);
    const a = await kernels.async.transpose(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3], [1, 0]);
    expect(Array.from(a as Int32Array)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('throws typed errors and rejects async calls with the same code', async () => {
    expect(() => kernels.gather(new Float32Array(3), [3], new Int32Array([3]), [1], 0)).toThrow(
      expect.objectContaining({ code: 'INDEX_OUT_OF_RANGE' }),
    );
    await expect(kernels.async.cast(new Float32Array([Number.NaN]), 'INT32')).rejects.toMatchObject({ code: 'INVALID_CAST' });
    await expect(kernels.async.unary('exp', [1] as unknown as Float32Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
