/**
 * Tensor payloads decoded ahead of time, off the event loop (src/server/json_worker.ts), standing in the parsed request
 * where the JSON value they came from was. decodeTensor (src/tensor/wire.ts) finishes them with the same checks, in
 * the same order and with the same errors as the JSON value would have had; a JSON body can never produce one of
 * these objects, so they cannot be forged by a client.
 */
import type { DType, TypedArray } from './dtype.js';

/**
 * What the worker learned from one JSON array in a tensor position (`inputs.x.data`, or a bare nested `inputs.x`),
 * field-relative so that decodeTensor can give each error its full path.
 */
export interface ArraySpec {
  /** `data`, or `` for a bare array (decodeTensor's `field`). */
  field: string;
  /** The message of nestedShape's error (ragged or over-deep nesting), else undefined. */
  nestedError?: string | undefined;
  /** nestedShape's result when it succeeded. */
  nested?: number[] | undefined;
  /** Elements once flattened (what fromJsonData compares with the shape). */
  count: number;
  /** The datatype the elements were decoded to (certain when `values` is absent). */
  dtype: DType;
  /** The elements as `dtype`, when they all fit it. */
  decoded?: TypedArray | undefined;
  /** The message of fillFlat's error for `dtype`, when an element does not fit it. */
  error?: string | undefined;
  /**
   * When the datatype was a guess (a shorthand or an object without `datatype`), what decodeTensor needs for any other
   * datatype: the elements exactly, when all are numbers; else the outcome of decoding them as each other datatype.
   */
  values?: Float64Array | undefined;
  outcomes?: Partial<Record<DType, { decoded?: TypedArray | undefined; error?: string | undefined }>> | undefined;
}

/** A bare array stands in for an array, so every `Array.isArray` test on the request keeps its answer. */
export class PreparsedArray extends Array<unknown> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  readonly spec: ArraySpec;
  /** decoded is handed out once; a second decode of the same request value gets a copy. */
  taken = false;

  constructor(spec: ArraySpec) {
    super();
    this.spec = spec;
  }
}

/** What the worker learned from one long `b64` string of a tensor object. */
export interface B64Spec {
  strLen: number;
  /** Length without the trailing `=` padding. */
  unpadded: number;
  decodedLen: number;
  /** Bytes Buffer's base64 decoder wrote into `bytes` (fewer than decodedLen: corrupt base64). */
  written: number;
  /** The decoded bytes (absent when the length or padding is already wrong). */
  bytes?: ArrayBuffer | undefined;
  /** Bytes already normalized to 0/1 (the datatype was surely BOOL). */
  boolNormalized: boolean;
}

export class PreparsedB64 {
  readonly spec: B64Spec;
  taken = false;

  constructor(spec: B64Spec) {
    this.spec = spec;
  }
}
