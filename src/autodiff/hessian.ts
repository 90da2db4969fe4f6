/** Hessian-vector products and Hessians: not implemented yet. */
import { GradserveError } from '../errors.js';
import type { HessianResult, HvpResult, RunOptions, Tensors } from '../engine.types.js';
import type { Graph } from '../graph/types.js';

export async function hvp(_graph: Graph, _inputs: Tensors, _of: string, _vectors: Tensors, _opts?: RunOptions): Promise<HvpResult> {
  throw new GradserveError('INTERNAL', 'hvp is not implemented yet');
}

export async function hessian(_graph: Graph, _inputs: Tensors, _of: string, _wrt: string[], _opts?: RunOptions): Promise<HessianResult> {
  throw new GradserveError('INTERNAL', 'hessian is not implemented yet');
}
