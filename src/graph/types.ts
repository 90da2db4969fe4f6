/** The graph IR exactly as it travels on the wire (API.md "Graphs"). */
import type { DType } from '../tensor/dtype.js';

export interface InputSpec {
  /** `null` entries are dimensions of any size; an omitted shape accepts any rank. */
  shape?: (number | null)[];
  datatype?: string;
}

/** A constant carries its data exactly like a request tensor (json `data` flat/nested, or `b64`). */
export interface WireTensor {
  shape?: number[];
  datatype?: string;
  data?: unknown;
  b64?: string;
}

export interface NodeSpec {
  name: string;
  op: string;
  inputs: string[];
  attrs?: Record<string, unknown>;
}

export interface Graph {
  inputs?: Record<string, InputSpec>;
  constants?: Record<string, WireTensor>;
  nodes: NodeSpec[];
  outputs?: string[];
}

export interface ValueInfo {
  shape: number[];
  datatype: DType;
}
