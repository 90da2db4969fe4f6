/**
 * gradserve as a library: the engine behind the HTTP service, usable directly from Node.
 *
 *   import { evaluate, grad, vjp, GraphBuilder } from 'gradserve';
 */
import type { Engine } from './engine.types.js';
import { evaluate, shapes } from './graph/evaluate.js';
import { gradcheck } from './autodiff/gradcheck.js';
import { hessian, hvp } from './autodiff/hessian.js';
import { jacobian } from './autodiff/jacobian.js';
import { grad, jvp, vjp } from './autodiff/run.js';
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
export { GraphBuilder, Value, type Operand } from './builder.js';
export type * from './engine.types.js';
export type { Graph, NodeSpec, InputSpec, WireTensor, ValueInfo } from './graph/types.js';
export type { Tensor } from './tensor/tensor.js';
export { tensor } from './tensor/tensor.js';
