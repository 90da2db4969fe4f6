/**
 * Selection ops: `where(cond, a, b)` with 3-way broadcasting and `clip(x; min, max)`. Their derivatives route the
 * cotangent with `where` instead of multiplying by a 0/1 mask, so a NaN or Infinity in the untaken branch can never
 * leak into the gradient (0 * NaN would).
 */
import { z } from 'zod';
import { kernelTensor } from '../tensor/tensor.js';
import type { Emitter, OpDef, Ref } from './types.js';
import {
  ANY, attrAt, broadcastOrFail, elements, failNode, fitTo, needDtype, NUMERIC, sameDtype, unbroadcast,
} from './common.js';

const where: OpDef = {
  name: 'where',
  inputs: ['cond', 'a', 'b'],
  attrs: z.strictObject({}),
  outputDatatype: 'same as a and b',
  differentiable: true,
  doc: 'Elementwise cond ? a : b with 3-way NumPy broadcasting; cond is BOOL.',
  conventions: [
    'no gradient to cond',
    'the gradient of the untaken branch is exactly 0, so NaN/Infinity there never leaks (where(x > 0, sqrt(x), 0) at x = -1 has gradient 0)',
  ],
  infer(inputs, _attrs, ctx) {
    needDtype(inputs[0]!.dtype, 'cond', ['BOOL'], ctx);
    const dtype = sameDtype(inputs.slice(1), ['a', 'b'], ANY, ctx);
    return { shape: broadcastOrFail(inputs, ctx), dtype };
  },
  async run([cond, a, b], _attrs, k) {
    const out = await k.where(
      cond!.data as Uint8Array, cond!.shape as number[], a!.data, a!.shape as number[], b!.data, b!.shape as number[],
    );
    return kernelTensor(a!.dtype, out.shape, out.data);
  },
  flops: (_inputs, output) => elements(output),
  elementwise: true,
  vjp({ e, inputs: [cond, a, b], g }) {
    const zero = e.scalar(0, g.dtype);
    return [
      null,
      unbroadcast(e, e.op('where', [cond!, g, zero]), a!),
      unbroadcast(e, e.op('where', [cond!, zero, g]), b!),
    ];
  },
  jvp({ e, inputs: [cond], output, tangents: [, ta, tb] }) {
    const zero = e.scalar(0, output.dtype);
    return fitTo(e, e.op('where', [cond!, ta ?? zero, tb ?? zero]), output);
  },
  samples: [
    {
      inputs: [{ shape: [2, 3], dtype: 'BOOL', values: [1, 0, 1, 0, 0, 1] }, { shape: [2, 3] }, { shape: [2, 3] }],
      note: 'same shapes',
    },
    {
      inputs: [{ shape: [2, 1], dtype: 'BOOL', values: [1, 0] }, { shape: [3] }, { shape: [] }],
      note: '3-way broadcast [2, 1], [3], []',
    },
    {
      inputs: [{ shape: [3], dtype: 'BOOL', values: [0, 1, 1] }, { shape: [2, 1] }, { shape: [2, 3] }],
      note: 'branches of different shapes',
    },
  ],
};

const clipAttrs = z.strictObject({
  min: z.number().nullable().default(null),
  max: z.number().nullable().default(null),
});
type ClipAttrs = z.infer<typeof clipAttrs>;

/** `v` where min <= x <= max (bounds inclusive), else 0. */
function passInside(e: Emitter, v: Ref, x: Ref, { min, max }: ClipAttrs): Ref {
  const zero = e.scalar(0, v.dtype);
  let out = v;
  if (min !== null) out = e.op('where', [e.op('less', [x, e.scalar(min, x.dtype)]), zero, out]);
  if (max !== null) out = e.op('where', [e.op('greater', [x, e.scalar(max, x.dtype)]), zero, out]);
  return out;
}

const clip: OpDef<ClipAttrs> = {
  name: 'clip',
  inputs: ['x'],
  attrs: clipAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Elementwise clamp of x to [min, max]; either bound may be null (unbounded). NaN stays NaN.',
  conventions: ['gradient 1 where min <= x <= max (bounds inclusive), else 0', 'min > max is INVALID_ATTRS'],
  check(attrs, ctx) {
    if (attrs.min !== null && attrs.max !== null && attrs.min > attrs.max) {
      failNode('INVALID_ATTRS', ctx, `min (${attrs.min}) is greater than max (${attrs.max})`, attrAt('min'));
    }
  },
  infer(inputs, _attrs, ctx) {
    const dtype = sameDtype(inputs, ['x'], NUMERIC, ctx);
    return { shape: [...inputs[0]!.shape], dtype };
  },
  async run([x], attrs, k) {
    return kernelTensor(x!.dtype, x!.shape, await k.clip(x!.data, attrs.min, attrs.max));
  },
  flops: (_inputs, output) => elements(output),
  elementwise: true,
  vjp: ({ e, inputs: [x], g, attrs }) => [passInside(e, g, x!, attrs)],
  jvp: ({ e, inputs: [x], tangents: [t], attrs }) => passInside(e, t!, x!, attrs),
  samples: [
    { inputs: [{ shape: [2, 3], values: [-1.7, -0.5, 0.3, 0.9, 1.4, -1.2] }], attrs: { min: -1, max: 1 }, note: 'both bounds' },
    { inputs: [{ shape: [4], values: [-1.3, -0.2, 0.6, 2.1] }], attrs: { min: 0, max: null }, note: 'lower bound only' },
    { inputs: [{ shape: [], values: [0.4] }], attrs: { min: null, max: 0.1 }, note: 'upper bound only, scalar []' },
  ],
};

export const ops: OpDef[] = [where, clip];
