/**
 * batch_norm's derivatives in training mode as two fused internal ops, each one native kernel that walks x channel by
 * channel (the same rule written with broadcasting ops made a dozen passes over x and held several temporaries of
 * its size):
 *
 *   batch_norm_grad(x, scale, g)     the gradient w.r.t. x of <g, batch_norm(x, scale, bias; training)>:
 *                                    scale r P(g), with P(g) = g - mean(g) - xhat mean(g xhat)
 *   batch_norm_scale_grad(x, g)      its gradient w.r.t. scale: Σ g xhat per channel, shape (C,)
 *
 * with xc = x - mean(x), r = 1 / sqrt(mean(xc²) + epsilon), xhat = xc r, means over N and the spatial axes. Both have
 * VJP and JVP rules written with ops (these two included), so batch_norm stays differentiable to any order. P is
 * symmetric, so each is its own adjoint in g; the derivatives in x come from
 *   <u, r P(t)> = r K - r³ M,  K = Σ u t - mean(t) Σ u,  M = mean(t xc) Σ u xc,  t = scale g,
 * with dr/dx = -r³ xc / n (n elements per channel).
 */
import { z } from 'zod';
import type { FloatArray } from '../kernels.types.js';
import { batchNormGradVmap } from './batching_nn.js';
import { failNode, FP, fmt, inputAt, sameDtype } from './common.js';
import { epsilonSchema, needShape, nonChannelAxes, perChannel } from './norm.js';
import type { Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';

type Attrs = { epsilon: number };

const attrs = z.strictObject({ epsilon: epsilonSchema(1e-5) });
const elements = (s: readonly (number | null)[]): number => s.reduce<number>((p, d) => p * (d ?? 0), 1);

function checkX(x: ValueMeta, ctx: InferContext): void {
  if (x.shape.length < 2 || x.shape.length > 5) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} must be (N, C) followed by 0 to 3 spatial axes`, inputAt(0));
}

/** The per-channel quantities of x the rules below are written with. */
function channelStats(e: Emitter, x: Ref, epsilon: number) {
  const axes = nonChannelAxes(x.shape.length);
  const mean = (v: Ref): Ref => e.op('mean', [v], { axes, keepdims: true });
  const xc = e.op('sub', [x, mean(x)]);
  const r = e.op('reciprocal', [e.op('sqrt', [e.op('add', [mean(e.op('square', [xc])), e.scalar(epsilon, x.dtype)])])]);
  const r3 = e.op('mul', [r, e.op('square', [r])]);
  /** z - mean(z): the centring projection */
  const center = (z: Ref): Ref => e.op('sub', [z, mean(z)]);
  return { axes, mean, xc, r, r3, center };
}

const batchNormGrad: OpDef<Attrs> = {
  name: 'batch_norm_grad',
  inputs: ['x', 'scale', 'g'],
  internal: true,
  attrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: "Gradient w.r.t. x of <g, batch_norm(x, scale, bias)> with batch statistics (batch_norm's VJP in training mode): scale r (g - mean(g) - xhat mean(g xhat)).",
  infer(inputs, _attrs, ctx) {
    const dtype = sameDtype(inputs, ['x', 'scale', 'g'], FP, ctx);
    const [x, scale, g] = inputs as [ValueMeta, ValueMeta, ValueMeta];
    checkX(x, ctx);
    needShape(scale, [x.shape[1]!], 'scale', 1, `one value per channel of x ${fmt(x.shape)}`, ctx);
    needShape(g, x.shape, 'g', 2, `x's shape ${fmt(x.shape)}`, ctx);
    return { shape: [...x.shape], dtype };
  },
  async run([x, scale, g], { epsilon }, k) {
    const shape = [...x!.shape];
    const data = await k.batchNormGrad(x!.data as FloatArray, shape, scale!.data as FloatArray, g!.data as FloatArray, epsilon);
    return { dtype: x!.dtype, shape, data };
  },
  flops: ([x]) => 10 * elements(x!.shape),
  vjp({ e, inputs: [x, scale, g], g: u, attrs: a }) {
    const s = channelStats(e, x!, a.epsilon);
    const t = e.op('mul', [g!, perChannel(e, scale!, x!.shape.length)]);
    const [mt, mu, mut, mtx, mux] = [t, u, e.op('mul', [u, t]), e.op('mul', [t, s.xc]), e.op('mul', [u, s.xc])].map(s.mean) as Ref[];
    // d<u, r P(t)>/dx = -r³ ((K' - 3 r² M') xc + C(t mean(u xc) + u mean(t xc))), K' = K / n, M' = M / n
    const kk = e.op('sub', [mut!, e.op('mul', [mt!, mu!])]);
    const mm = e.op('mul', [mtx!, mux!]);
    const coef = e.op('sub', [kk, e.op('mul', [e.op('mul', [e.op('square', [s.r]), mm]), e.scalar(3, x!.dtype)])]);
    const inner = e.op('add', [e.op('mul', [coef, s.xc]), s.center(e.op('add', [e.op('mul', [t, mux!]), e.op('mul', [u, mtx!])]))]);
    const dx = e.op('neg', [e.op('mul', [s.r3, inner])]);
    const ones = e.op('ones_like', [scale!]);
    const dscale = e.op('sum', [e.op('mul', [g!, e.op('batch_norm_grad', [x!, ones, u], a)])], { axes: s.axes, keepdims: false });
    return [dx, dscale, e.op('batch_norm_grad', [x!, scale!, u], a)];
  },
  jvp({ e, inputs: [x, scale, g], tangents: [tx, ts, tg], attrs: a }) {
    const terms: Ref[] = [];
    if (tg) terms.push(e.op('batch_norm_grad', [x!, scale!, tg], a));
    if (ts) terms.push(e.op('batch_norm_grad', [x!, ts, g!], a));
    if (tx) {
      // along tx with t fixed: dr (t - mean(t)) - 3 r² dr xc mean(t xc) - r³ (dxc mean(t xc) + xc mean(t dxc)),
      // dxc = tx - mean(tx), dr = -r³ mean(xc dxc)
      const s = channelStats(e, x!, a.epsilon);
      const t = e.op('mul', [g!, perChannel(e, scale!, x!.shape.length)]);
      const dxc = s.center(tx);
      const dr = e.op('neg', [e.op('mul', [s.r3, s.mean(e.op('mul', [s.xc, dxc]))])]);
      const mtx = s.mean(e.op('mul', [t, s.xc]));
      const first = e.op('mul', [dr, s.center(t)]);
      const second = e.op('mul', [e.op('mul', [e.op('mul', [e.op('square', [s.r]), dr]), mtx]), e.op('mul', [s.xc, e.scalar(3, x!.dtype)])]);
      const third = e.op('mul', [s.r3, e.op('add', [e.op('mul', [dxc, mtx]), e.op('mul', [s.xc, s.mean(e.op('mul', [t, dxc]))])])]);
      terms.push(e.op('sub', [e.op('sub', [first, second]), third]));
    }
    return terms.length === 0 ? null : terms.reduce((p, q) => e.op('add', [p, q]));
  },
  vmap: batchNormGradVmap('batch_norm_grad', ['data', 'channel', 'data'], 'data'),
  samples: [
    { inputs: [{ shape: [3, 2, 4] }, { shape: [2] }, { shape: [3, 2, 4] }], attrs: { epsilon: 1e-5 }, note: '1 spatial axis' },
    { inputs: [{ shape: [4, 3] }, { shape: [3] }, { shape: [4, 3] }], attrs: { epsilon: 1e-5 }, note: 'no spatial axis' },
    { inputs: [{ shape: [2, 2, 2, 3] }, { shape: [2] }, { shape: [2, 2, 2, 3] }], attrs: { epsilon: 1e-3 }, note: '2 spatial axes' },
  ],
};

const batchNormScaleGrad: OpDef<Attrs> = {
  name: 'batch_norm_scale_grad',
  inputs: ['x', 'g'],
  internal: true,
  attrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: "Gradient w.r.t. scale of <g, batch_norm(x, scale, bias)> with batch statistics: Σ g xhat per channel, shape (C,).",
  infer(inputs, _attrs, ctx) {
    const dtype = sameDtype(inputs, ['x', 'g'], FP, ctx);
    const [x, g] = inputs as [ValueMeta, ValueMeta];
    checkX(x, ctx);
    needShape(g, x.shape, 'g', 1, `x's shape ${fmt(x.shape)}`, ctx);
    return { shape: [x.shape[1]!], dtype };
  },
  async run([x, g], { epsilon }, k) {
    const data = await k.batchNormScaleGrad(x!.data as FloatArray, [...x!.shape], g!.data as FloatArray, epsilon);
    return { dtype: x!.dtype, shape: [x!.shape[1]!], data };
  },
  flops: ([x]) => 6 * elements(x!.shape),
  vjp({ e, inputs: [x, g], g: w, attrs: a }) {
    // Σ_c w_c Σ g xhat: w r P(g) in x; w xhat in g (batch_norm with scale w and no shift; its statistics are ignored)
    const zeros = e.op('zeros_like', [w]);
    const ones = e.op('ones_like', [w]);
    return [e.op('batch_norm_grad', [x!, w, g!], a), e.op('batch_norm', [x!, w, zeros, zeros, ones], { ...a, training: true })];
  },
  jvp({ e, inputs: [x, g], tangents: [tx, tg], attrs: a }) {
    const terms: Ref[] = [];
    if (tg) terms.push(e.op('batch_norm_scale_grad', [x!, tg], a));
    if (tx) {
      // Σ g (r P(tx)) = Σ tx (r P(g)) (P symmetric)
      const ones = e.op('ones_like', [e.op('batch_norm_scale_grad', [x!, g!], a)]);
      const rpg = e.op('batch_norm_grad', [x!, ones, g!], a);
      terms.push(e.op('sum', [e.op('mul', [tx, rpg])], { axes: nonChannelAxes(x!.shape.length), keepdims: false }));
    }
    return terms.length === 0 ? null : terms.reduce((p, q) => e.op('add', [p, q]));
  },
  vmap: batchNormGradVmap('batch_norm_scale_grad', ['data', 'data'], 'channel'),
  samples: [
    { inputs: [{ shape: [3, 2, 4] }, { shape: [3, 2, 4] }], attrs: { epsilon: 1e-5 }, note: '1 spatial axis' },
    { inputs: [{ shape: [2, 3, 2, 2] }, { shape: [2, 3, 2, 2] }], attrs: { epsilon: 1e-3 }, note: '2 spatial axes' },
  ],
};

export const ops: OpDef[] = [batchNormGrad, batchNormScaleGrad];
