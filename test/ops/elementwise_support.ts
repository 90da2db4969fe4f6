/**
 * Test support for the elementwise families: the shared Recorder kit (./recorder.ts) with the elementwise argument
 * order for vjpOf, and small tensor/reference helpers.
 */
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { vjpOf as vjpWithCotangent } from './recorder.js';

export { f32, f64, i32, i64, jvpOf, opDef, Recorder, runOp } from './recorder.js';

/** The op's VJP rule applied to cotangent `g` (default ones): attrs come first here because most calls omit `g`. */
export function vjpOf(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}, g?: Tensor): Promise<(Tensor | null)[]> {
  return vjpWithCotangent(op, inputs, g, attrs);
}

export const bool = (shape: number[], data: number[]): Tensor => tensor('BOOL', shape, data);
/** Plain numbers (with -0 read as 0: signed zeros are not part of what these tests pin). */
export const values = (t: Tensor | null): number[] =>
  t === null ? [] : Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v) + 0);

/** Element-wise closeness where NaN matches NaN and infinities must match exactly. */
export function expectClose(actual: readonly number[], expected: readonly number[], rtol: number, atol = 0, what = ''): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
  });
}

/** erf by its Maclaurin series (|x| <= 3: about 1e-14 absolute) and +-1 beyond 6 where the double rounds to it. */
export function erfRef(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  if (Math.abs(x) > 3) throw new Error('erfRef is only accurate for |x| <= 3');
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
    if (Math.abs(term) < 1e-18) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** Broadcast reference: out[i] = f(a[ia], b[ib]) for NumPy broadcasting of two shapes. */
export function broadcast2(as: number[], a: number[], bs: number[], b: number[], f: (x: number, y: number) => number): { shape: number[]; data: number[] } {
  const rank = Math.max(as.length, bs.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const pa = pad(as);
  const pb = pad(bs);
  const shape = pa.map((d, i) => Math.max(d, pb[i]!));
  const n = shape.reduce((x, y) => x * y, 1);
  const at = (s: number[], coords: number[]) => s.reduce((off, d, i) => off * d + (d === 1 ? 0 : coords[i]!), 0);
  const data: number[] = [];
  for (let k = 0; k < n; k++) {
    const coords: number[] = [];
    let r = k;
    for (let i = rank - 1; i >= 0; i--) {
      coords[i] = r % shape[i]!;
      r = Math.floor(r / shape[i]!);
    }
    data.push(f(a[at(pa, coords)]!, b[at(pb, coords)]!));
  }
  return { shape, data };
}
