/** Plain-array references the example outputs are checked against (row-major, no broadcasting needed here). */
import { expect } from 'vitest';
import type { parseTensorLines } from './live-server.js';

export function matmul(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out = new Array<number>(n * m).fill(0);
  for (let i = 0; i < n; i++) for (let p = 0; p < k; p++) for (let j = 0; j < m; j++) out[i * m + j]! += a[i * k + p]! * b[p * m + j]!;
  return out;
}

export function transpose(a: number[], rows: number, cols: number): number[] {
  const out = new Array<number>(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

/** The seed example: x [1, 2], w [2, 3], dy [1, 3]. */
export const SEED = {
  x: [1, 2],
  w: [1, 2, 3, 4, 5, 6],
  dy: [1, -1, 2],
};

export function seedReference(dy: number[] = SEED.dy) {
  const { x, w } = SEED;
  return {
    y: matmul(x, w, 1, 2, 3),
    dx: matmul(dy, transpose(w, 2, 3), 1, 3, 2), // dL/dx = dy·wᵀ
    dw: matmul(transpose(x, 1, 2), dy, 2, 1, 3), // dL/dw = xᵀ·dy
    jacYX: transpose(w, 2, 3), // J[0, m, 0, d] = w[d, m]
    hessHalfSquared: matmul(w, transpose(w, 2, 3), 2, 3, 2), // d²(½|x·w|²)/dx² = w·wᵀ
  };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}: ${Array.from(actual)} vs ${Array.from(expected)}`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    if (!(Math.abs(a - e) <= tol * (1 + Math.abs(e)))) throw new Error(`element ${i}: ${a} != ${e}\nactual   ${Array.from(actual)}\nexpected ${Array.from(expected)}`);
  }
}

/** The y, dL/dx and dL/dw lines that every language's seed example prints, checked by shape and by value. */
export function expectSeedTensors(t: ReturnType<typeof parseTensorLines>): void {
  const ref = seedReference();
  expect(t.get('y')?.shape).toEqual([1, 3]);
  expectClose(t.get('y')!.values, ref.y);
  expect(t.get('dL/dx')?.shape).toEqual([1, 2]);
  expectClose(t.get('dL/dx')!.values, ref.dx);
  expect(t.get('dL/dw')?.shape).toEqual([2, 3]);
  expectClose(t.get('dL/dw')!.values, ref.dw);
}
