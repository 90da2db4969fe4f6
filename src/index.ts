/**
 * gradserve as a library: the engine behind the HTTP service, usable directly from Node.
 *
 *   import { evaluate, grad, vjp, GraphBuilder } from 'gradserve';
 */
import { GradserveError } from './errors.js';
import type { Engine } from './engine.types.js';
import { evaluate, shapes } from './graph/evaluate.js';
import { gradcheck } from './autodiff/gradcheck.js';
import { hessian, hvp } from './autodiff/hessian.js';
import { jacobian } from './autodiff/jacobian.js';
import { opCatalogue } from './ops/registry.js';

function notYet(method: string): never {
  throw new GradserveError('INTERNAL', `${method} is not implemented yet`);
}

export const engine: Engine = {
  evaluate,
  grad: async () => notYet('grad'),
  vjp: async () => notYet('vjp'),
  jvp: async () => notYet('jvp'),
  jacobian,
  hvp,
  hessian,
  gradcheck,
  transform: () => notYet('transform'),
  shapes,
  ops: opCatalogue,
};

export { evaluate, shapes, jacobian, hvp, hessian, gradcheck };
export const ops = opCatalogue;
export { GradserveError, isGradserveError } from './errors.js';
export type * from './engine.types.js';
export type { Graph, NodeSpec, InputSpec, WireTensor, ValueInfo } from './graph/types.js';
export type { Tensor } from './tensor/tensor.js';
export { tensor } from './tensor/tensor.js';
