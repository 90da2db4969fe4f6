/**
 * Request and response types of the gradserve wire contract (v1 + the Open Inference Protocol surface), as seen by
 * a client. Kept free of server imports so the client bundles for browsers on its own; a test checks these against
 * the server's published OpenAPI document.
 */

export type DType = 'FP32' | 'FP64' | 'INT32' | 'INT64' | 'BOOL';
/** Lower-case numpy spellings the service also accepts. */
export type DTypeAlias = DType | 'float32' | 'float64' | 'int32' | 'int64' | 'bool';

/** INT64 travels as a BigInt64Array, BOOL as a Uint8Array of 0/1 (the service's own in-memory layout). */
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A decoded tensor: row-major `data` with `data.length === product(shape)`. */
export interface Tensor<A extends TypedArray = TypedArray> {
  shape: number[];
  datatype: DType;
  data: A;
}

/** A JSON scalar as it travels: non-finite floats are the strings "NaN", "Infinity", "-Infinity". */
export type WireScalar = number | boolean | 'NaN' | 'Infinity' | '-Infinity';
export type WireNested = WireScalar | WireNested[];

/** A tensor exactly as it travels (API.md "Tensors"). */
export interface WireTensor {
  shape: number[];
  datatype: DTypeAlias;
  data?: WireNested[];
  b64?: string;
  /** Binary framing: the tensor's bytes are in the binary section of the body, at this offset (API.md). */
  binary_data_size?: number;
  binary_data_offset?: number;
}

export type NestedNumbers = number | NestedNumbers[];

/**
 * What callers may pass wherever the API takes a tensor:
 * - a decoded `Tensor` or `{shape, data: TypedArray}` (datatype read from the array type),
 * - a bare TypedArray (a 1-D tensor),
 * - a number or nested number array (the wire shorthand: datatype from the graph's declaration, else FP32),
 * - a `WireTensor`, passed through untouched.
 */
export type TensorInput =
  | Tensor
  | { shape: number[]; data: TypedArray; datatype?: DTypeAlias }
  | TypedArray
  | NestedNumbers
  | WireTensor;

export interface InputSpec {
  /** `null` is a dimension of any size; an omitted shape accepts any rank. */
  shape?: (number | null)[];
  datatype?: DTypeAlias;
}

export interface NodeSpec {
  name: string;
  op: string;
  inputs: string[];
  attrs?: Record<string, unknown>;
}

/** A graph as callers write it: constants may be typed arrays, the client encodes them. */
export interface GraphSpec {
  inputs?: Record<string, InputSpec>;
  constants?: Record<string, TensorInput>;
  nodes: NodeSpec[];
  outputs?: string[];
}

/** A graph as the service returns it (from /v1/transform): constants in wire form. */
export interface WireGraph {
  inputs?: Record<string, InputSpec>;
  constants?: Record<string, WireTensor>;
  nodes: NodeSpec[];
  outputs?: string[];
}

/** How the service writes response tensors: JSON numbers, base64, or binary framing (raw bytes after a JSON header). */
export type Encoding = 'json' | 'b64' | 'binary';

/** The graph of a request: inline (`graph`) or a repository model by name (`model`), exactly one of them. */
interface GraphSource {
  graph?: GraphSpec;
  /** A model of the server's repository; its stored parameters are default inputs. */
  model?: string;
}

interface BaseRequest extends GraphSource {
  inputs?: Record<string, TensorInput>;
  /** How the service writes response tensors; defaults to the client's `responseEncoding`. */
  encoding?: Encoding;
}

export interface EvaluateRequest extends BaseRequest {
  outputs?: string[];
}
/**
 * Per-example gradients: the gradient of `of` for each slice of the graph inputs `inputs` along `axis`, as if the
 * graph ran on that slice alone (the axis kept at size 1). A sliced input's gradient has that input's shape (slice i
 * holds example i's gradient); any other `wrt` value's gets a new leading axis of size N.
 */
export interface PerExample {
  axis: number;
  inputs: string[];
}
export interface GradRequest extends BaseRequest {
  /** A value with exactly one element (per example, with `per_example`). */
  of: string;
  wrt: string[];
  per_example?: PerExample;
}
export interface VjpRequest extends BaseRequest {
  cotangents: Record<string, TensorInput>;
  wrt: string[];
  /** Every cotangent has one extra leading axis of size B, and so does every gradient: B products in one pass. */
  batched?: boolean;
}
export interface JvpRequest extends BaseRequest {
  tangents: Record<string, TensorInput>;
  of?: string[];
  /** Every tangent has one extra leading axis of size B, and so does every output tangent. */
  batched?: boolean;
}
export type JacobianMode = 'auto' | 'forward' | 'reverse';
export interface JacobianRequest extends BaseRequest {
  of: string[];
  wrt: string[];
  mode?: JacobianMode;
}
export interface HvpRequest extends BaseRequest {
  of: string;
  vectors: Record<string, TensorInput>;
  /** Every vector has one extra leading axis of size B, and so does every hvp; `gradients` stay plain. */
  batched?: boolean;
}
export interface HessianRequest extends BaseRequest {
  of: string;
  wrt: string[];
}
export interface GradcheckRequest extends BaseRequest {
  of: string;
  wrt: string[];
  eps?: number;
  atol?: number;
  rtol?: number;
}
export type TransformRequest =
  | (GraphSource & { transform: 'grad'; of: string; wrt: string[]; encoding?: Encoding })
  | (GraphSource & { transform: 'vjp'; of: string[]; wrt: string[]; encoding?: Encoding })
  | (GraphSource & { transform: 'jvp'; wrt: string[]; of?: string[]; encoding?: Encoding });
/** POST /v1/render: a picture of the graph, and of its derivative graph with `transform` (fields as for transform). */
export interface RenderRequest extends GraphSource {
  transform?: 'grad' | 'vjp' | 'jvp';
  /** one name for grad, a list for vjp and jvp */
  of?: string | string[];
  wrt?: string[];
  /** inputs drawn as parameters (weights) rather than data */
  parameters?: string[];
}
export type RenderFormat = 'svg' | 'dot';
export interface ShapesRequest extends GraphSource {
  encoding?: Encoding;
  /** Either real tensors or just `{shape, datatype}`: nothing is executed. */
  inputs?: Record<string, TensorInput | { shape: number[]; datatype?: DTypeAlias }>;
}

export type TensorMap = Record<string, Tensor>;

export interface EvaluateResponse {
  outputs: TensorMap;
}
export interface GradResponse {
  outputs: TensorMap;
  gradients: TensorMap;
}
export type VjpResponse = GradResponse;
export interface JvpResponse {
  outputs: TensorMap;
  tangents: TensorMap;
}
export interface JacobianResponse {
  outputs: TensorMap;
  /** `jacobians[of][wrt]` has shape `of.shape ++ wrt.shape`. */
  jacobians: Record<string, TensorMap>;
  mode: 'forward' | 'reverse';
}
export interface HvpResponse {
  outputs: TensorMap;
  gradients: TensorMap;
  hvp: TensorMap;
}
export interface HessianResponse {
  outputs: TensorMap;
  /** `hessians[wrt_i][wrt_j]` has shape `wrt_i.shape ++ wrt_j.shape`. */
  hessians: Record<string, TensorMap>;
}
export interface GradcheckStats {
  ok: boolean;
  maxAbsError: number;
  maxRelError: number;
}
export interface GradcheckResponse extends GradcheckStats {
  perInput: Record<string, GradcheckStats>;
}
export interface TransformResponse {
  graph: WireGraph;
}
export interface ShapesResponse {
  values: Record<string, { shape: number[]; datatype: DType }>;
  flops: number;
  peakBytes: number;
}
export interface OpInfo {
  name: string;
  /** input names (a name ending in `?` is optional: a node may leave it off from the end), or a variadic list */
  inputs: string[] | { variadic: string; min: number };
  /** JSON Schema of the op's attributes. */
  attrs: Record<string, unknown>;
  outputDatatype: string;
  differentiable: boolean;
  conventions: unknown;
  [extra: string]: unknown;
}
export interface OpsResponse {
  ops: OpInfo[];
}

/** Open Inference Protocol (KServe v2) shapes, per its REST spec. */
export interface OipServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}
export interface OipModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
}
export interface OipInferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: Record<string, TensorInput>;
  /** Output names, or `{name, parameters}`; a `grad:<wrt>` name with `parameters: {of}` asks for a gradient. */
  outputs?: (string | { name: string; parameters?: Record<string, unknown> })[];
}
export interface OipInferResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  outputs: TensorMap;
}

/** POST /v1/import/onnx: the translated graph, its parameters (with their values unless `weights: 'none'`). */
export interface ImportOnnxOptions {
  /** `none`: shapes and datatypes only; `b64` (default) or `binary`: the values too, decoded into typed arrays. */
  weights?: 'none' | 'b64' | 'binary';
  /** Sizes for symbolic dimensions, e.g. `{batch: 8}`. */
  dims?: Record<string, number>;
}
export interface ImportOnnxResponse {
  graph: WireGraph;
  /** Shapes and datatypes; `values` holds the tensors when they were asked for. */
  parameters: Record<string, { shape: number[]; datatype: string }>;
  values: TensorMap;
  notes: string[];
}
