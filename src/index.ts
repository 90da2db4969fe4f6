/**
 * gradserve as a library: the engine behind the HTTP service, usable directly from Node.
 *
 *   import { GraphBuilder, grad, tensor, transform } from 'gradserve';
 *
 *   const b = new GraphBuilder();
 *   const x = b.input('x', [null, 2]);
 *   const w = b.input('w', [2, 3]);
 *   const loss = x.matmul(w).tanh().sum().as('loss');
 *   const graph = b.output(loss).build();                 // API.md graph JSON
 *
 *   const { outputs, gradients } = await grad(graph, {
 *     x: tensor('FP32', [1, 2], [1, 2]),
 *     w: tensor('FP32', [2, 3], [1, 2, 3, 4, 5, 6]),
 *   }, 'loss', ['w']);
 *
 *   const backward = transform(graph, { transform: 'grad', of: 'loss', wrt: ['w'] }); // a graph again
 *
 * Every function throws GradserveError (src/errors.ts) with a catalogue code and `errors[].path` into the request.
 * Graphs are validated, planned and differentiated once per (graph, input shapes) and then served from caches; a
 * deeply frozen graph object also skips re-hashing.
 */
import type { Engine } from './engine.types.js';
import { evaluate, shapes } from './engine/evaluate.js';
import { gradcheck } from './engine/gradcheck.js';
import { hessian, hvp } from './engine/hessian.js';
import { jacobian } from './engine/jacobian.js';
import { grad, jvp, vjp } from './engine/run.js';
import { transform } from './autodiff/transform.js';
import { opCatalogue } from './ops/registry.js';

export const engine: Engine = {
  evaluate,
  grad,
  vjp,
  jvp,
  jacobian,
  hvp,
  hessian,
  gradcheck,
  transform,
  shapes,
  ops: opCatalogue,
};

export { evaluate, grad, vjp, jvp, transform, shapes, jacobian, hvp, hessian, gradcheck };
export const ops = opCatalogue;
export { GradserveError, isGradserveError } from './errors.js';
export { GraphBuilder, Value, type ConvOptions, type ConvTransposeOptions, type Operand } from './builder.js';
export type * from './engine.types.js';
export type { Graph, NodeSpec, InputSpec, WireTensor, ValueInfo } from './graph/types.js';
export type { Tensor } from './tensor/tensor.js';
export type { DType } from './tensor/dtype.js';
export { tensor } from './tensor/tensor.js';
