/**
 * Logic and tests (op set v2), all BOOL out and without gradient: logical_and/or/xor (BOOL operands, broadcasting;
 * native binary kernels), logical_not (BOOL), and isnan/isinf/isfinite (FP in). The unary ones are exact compositions
 * of existing kernels, so the kernel contract (a unary kernel keeps its input's datatype) stays as it is:
 *   logical_not(x) = (x == false)    isnan(x) = (x != x)    isinf(x) = (|x| == Inf)    isfinite(x) = (|x| < Inf)
 */
import { z } from 'zod';
import { scalarArray, type DType } from '../tensor/dtype.js';
import { kernelTensor, type Tensor } from '../tensor/tensor.js';
import { binaryOp } from './binary.js';
import { elements, FP, needDtype } from './common.js';
import type { OpDef, OpKernels, OpSample } from './types.js';

const BOOL: readonly DType[] = ['BOOL'];
const noAttrs = z.strictObject({});

const boolSamples: OpSample[] = [
  { inputs: [{ shape: [2, 3], dtype: 'BOOL' }, { shape: [2, 3], dtype: 'BOOL' }], note: 'same shape' },
  { inputs: [{ shape: [2, 1], dtype: 'BOOL', values: [1, 0] }, { shape: [2], dtype: 'BOOL', values: [1, 0] }], note: 'broadcast [2, 1] x [2]: every pair' },
];

const logical = (name: string, doc: string): OpDef => binaryOp({
  name, doc, dtypes: BOOL, comparison: true, conventions: ['BOOL operands and result; no gradient'], samples: boolSamples,
});

/** A BOOL-valued unary test: the shape of x, no gradient. */
function test(name: string, doc: string, dtypes: readonly DType[], run: (x: Tensor, k: OpKernels) => Promise<Tensor>, samples: OpSample[]): OpDef {
  return {
    name,
    inputs: ['x'],
    attrs: noAttrs,
    outputDatatype: 'BOOL',
    differentiable: false,
    conventions: ['no gradient'],
    doc,
    infer([x], _attrs, ctx) {
      needDtype(x!.dtype, 'x', dtypes, ctx);
      return { shape: [...x!.shape], dtype: 'BOOL' };
    },
    run: ([x], _attrs, k) => run(x!, k),
    flops: (_inputs, output) => elements(output),
    samples,
    elementwise: true,
  };
}

async function compare(k: OpKernels, op: string, x: Tensor, data: Tensor['data'], other: Tensor['data'], otherShape: number[]): Promise<Tensor> {
  const out = await k.binary(op, data, [...x.shape], other, otherShape);
  return kernelTensor('BOOL', out.shape, out.data);
}

/** |x| against +Infinity (`equal`: isinf, `less`: isfinite; NaN is neither) */
async function againstInf(op: 'equal' | 'less', x: Tensor, k: OpKernels): Promise<Tensor> {
  const abs = await k.unary('abs', x.data);
  return compare(k, op, x, abs, scalarArray(x.dtype, Infinity), []);
}

const special: OpSample[] = [
  { inputs: [{ shape: [2, 4], values: [NaN, Infinity, -Infinity, 0, -0, 1.5, -2, 1e308] }], note: 'NaN, +-Infinity, zeros, finite' },
  { inputs: [{ shape: [3], range: [-2, 2] }], note: 'finite values' },
];

export const ops: OpDef[] = [
  logical('logical_and', 'Elementwise a AND b of BOOL values, with NumPy broadcasting.'),
  logical('logical_or', 'Elementwise a OR b of BOOL values, with NumPy broadcasting.'),
  logical('logical_xor', 'Elementwise a XOR b of BOOL values, with NumPy broadcasting.'),
  test('logical_not', 'Elementwise NOT x of a BOOL value.', BOOL,
    (x, k) => compare(k, 'equal', x, x.data, scalarArray('BOOL', 0), []),
    [{ inputs: [{ shape: [2, 3], dtype: 'BOOL' }] }, { inputs: [{ shape: [], dtype: 'BOOL', values: [1] }], note: 'scalar []' }]),
  test('isnan', 'Elementwise test for NaN (BOOL).', FP, (x, k) => compare(k, 'not_equal', x, x.data, x.data, [...x.shape]), special),
  test('isinf', 'Elementwise test for +Infinity or -Infinity (BOOL).', FP, (x, k) => againstInf('equal', x, k), special),
  test('isfinite', 'Elementwise test for a finite value: neither NaN nor infinite (BOOL).', FP, (x, k) => againstInf('less', x, k), special),
];
