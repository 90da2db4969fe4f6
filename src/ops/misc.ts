/**
 * Datatype conversion and the pass-through ops. `identity` and `stop_gradient` return their input tensor itself (the
 * executor never mutates inputs, so aliasing is safe); they differ only in what their derivatives pass.
 */
import { z } from 'zod';
import { DTYPE_ALIASES, isFloat, parseDType, type DType } from '../tensor/dtype.js';
import { kernelTensor } from '../tensor/tensor.js';
import type { OpDef } from './types.js';
import { ANY, elements, sameDtype } from './common.js';

const castAttrs = z.strictObject({
  to: z.enum(Object.keys(DTYPE_ALIASES) as [string, ...string[]]),
});
type CastAttrs = z.infer<typeof castAttrs>;

/** The schema only admits known names, so this never falls back. */
const target = (a: CastAttrs): DType => parseDType(a.to)!;

const cast: OpDef<CastAttrs> = {
  name: 'cast',
  inputs: ['x'],
  attrs: castAttrs,
  outputDatatype: 'the datatype `to`',
  differentiable: true,
  doc: 'Converts x to the datatype `to` (FP32, FP64, INT32, INT64, BOOL or the lower-case aliases float32, ...).',
  conventions: [
    'FP to INT truncates toward zero; NaN or an out-of-range value is INVALID_CAST',
    'FP to FP passes the gradient (cast back to the input datatype); casts to or from INT/BOOL have no gradient',
  ],
  infer(inputs, attrs, ctx) {
    sameDtype(inputs, ['x'], ANY, ctx);
    return { shape: [...inputs[0]!.shape], dtype: target(attrs) };
  },
  async run([x], attrs, k) {
    const to = target(attrs);
    if (x!.dtype === to) return x!;
    return kernelTensor(to, x!.shape, await k.cast(x!.data, to));
  },
  flops: (_inputs, output) => elements(output),
  elementwise: true,
  datatypeAttr: { name: 'to' },
  vjp({ e, inputs: [x], g, attrs }) {
    const to = target(attrs);
    if (!isFloat(x!.dtype) || !isFloat(to)) return [null];
    return [x!.dtype === to ? g : e.op('cast', [g], { to: x!.dtype })];
  },
  jvp({ e, inputs: [x], tangents: [t], attrs }) {
    const to = target(attrs);
    if (!isFloat(x!.dtype) || !isFloat(to)) return null;
    return x!.dtype === to ? t! : e.op('cast', [t!], { to });
  },
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { to: 'FP64' }, note: 'FP64 to FP64' },
    { inputs: [{ shape: [] }], attrs: { to: 'float64' }, note: 'lower-case alias, scalar []' },
  ],
};

const passThrough = (name: string, doc: string, differentiable: boolean, conventions: string[]): OpDef => {
  const def: OpDef = {
    name,
    inputs: ['x'],
    attrs: z.strictObject({}),
    outputDatatype: 'same as x',
    differentiable,
    doc,
    conventions,
    infer(inputs, _attrs, ctx) {
      const dtype = sameDtype(inputs, ['x'], ANY, ctx);
      return { shape: [...inputs[0]!.shape], dtype };
    },
    run: async ([x]) => x!,
    flops: () => 0,
    elementwise: true,
    aliases: 'always',
    samples: [
      { inputs: [{ shape: [2, 3] }] },
      { inputs: [{ shape: [] }], note: 'scalar []' },
    ],
  };
  if (differentiable) {
    def.vjp = ({ g }) => [g];
    def.jvp = ({ tangents: [t] }) => t!;
  }
  return def;
};

export const ops: OpDef[] = [
  cast,
  passThrough('identity', 'Returns x unchanged.', true, ['value and gradient pass through']),
  passThrough('stop_gradient', 'Returns x unchanged but blocks the gradient.', false, ['value passes; gradient is zero']),
];
