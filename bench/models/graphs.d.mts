// Types of graphs.mjs for the TypeScript test that builds the same models (test/engine/models.test.ts).
import type { GraphBuilder } from '../../src/builder.js';
import type { Graph } from '../../src/graph/types.js';

export interface Model {
  graph: Graph;
  shapes: Record<string, number[]>;
  dtypes: Record<string, 'INT64'>;
  classes?: number;
  /** every parameter and the input x */
  wrt: string[];
}
type Builder = typeof GraphBuilder;
type DType = 'FP32' | 'FP64';
export function lenet(b: Builder, size?: { N?: number; H?: number; C1?: number; C2?: number; F1?: number; F2?: number; classes?: number }, dtype?: DType): Model;
export function resblock(b: Builder, size?: { N?: number; C?: number; H?: number }, dtype?: DType): Model;
export function transformer(b: Builder, size?: { B?: number; T?: number; D?: number; heads?: number; hidden?: number }, dtype?: DType): Model;
export const MODELS: { lenet: typeof lenet; resblock: typeof resblock; transformer: typeof transformer };
export function modelInputs(model: Model, seed?: number): Record<string, Float64Array | BigInt64Array>;
