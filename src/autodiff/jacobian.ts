/** Generalized Jacobians (forward / reverse, batched basis vectors): not implemented yet. */
import { GradserveError } from '../errors.js';
import type { JacobianMode, JacobianResult, RunOptions, Tensors } from '../engine.types.js';
import type { Graph } from '../graph/types.js';

export async function jacobian(_graph: Graph, _inputs: Tensors, _of: string[], _wrt: string[], _mode?: JacobianMode, _opts?: RunOptions): Promise<JacobianResult> {
  throw new GradserveError('INTERNAL', 'jacobian is not implemented yet');
}
