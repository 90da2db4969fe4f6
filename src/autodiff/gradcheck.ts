/** Central finite-difference gradient checks: not implemented yet. */
import { GradserveError } from '../errors.js';
import type { GradcheckOptions, GradcheckResult, RunOptions, Tensors } from '../engine.types.js';
import type { Graph } from '../graph/types.js';

export async function gradcheck(_graph: Graph, _inputs: Tensors, _of: string, _wrt: string[], _check?: GradcheckOptions, _opts?: RunOptions): Promise<GradcheckResult> {
  throw new GradserveError('INTERNAL', 'gradcheck is not implemented yet');
}
