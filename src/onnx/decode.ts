/**
 * ONNX bytes -> plain objects, with protobufjs and the ONNX schema (onnx_proto.ts); nothing is decoded by hand. What
 * is not a usable ONNX model (empty, truncated, not protobuf, no graph, weights in external files) is INVALID_MODEL.
 */
import protobuf from 'protobufjs';
import { GradserveError } from '../errors.js';
import { ONNX_PROTO } from './onnx_proto.js';

const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');
const TensorProtoType = root.lookupType('onnx.TensorProto');

/** protobufjs decodes int64 fields as Long objects (the `long` package) or as numbers. */
export type Int64 = number | { low: number; high: number; unsigned?: boolean; toNumber(): number; toString(): string };

export interface TensorProto {
  dims?: Int64[];
  data_type?: number;
  name?: string;
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int64[];
  double_data?: number[];
  uint64_data?: Int64[];
  string_data?: Uint8Array[];
  data_location?: number;
  external_data?: { key?: string; value?: string }[];
  segment?: unknown;
}

export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  ref_attr_name?: string;
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeProto[];
}

export interface Dimension { dim_value?: Int64; dim_param?: string }
export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim?: Dimension[] } };
  sequence_type?: unknown;
  map_type?: unknown;
  optional_type?: unknown;
  sparse_tensor_type?: unknown;
}
export interface ValueInfoProto { name?: string; type?: TypeProto }

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparse_initializer?: unknown[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
}

export interface ModelProto {
  ir_version?: Int64;
  opset_import?: { domain?: string; version?: Int64 }[];
  producer_name?: string;
  producer_version?: string;
  graph?: GraphProto;
  functions?: unknown[];
}

export function int64(v: Int64 | undefined): number {
  if (v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function invalid(message: string): never {
  throw new GradserveError('INVALID_MODEL', message);
}

const decodeOpts = { arrays: false, defaults: false } as const;

/** Decodes and checks a model file's bytes: INVALID_MODEL when they cannot be an ONNX model gradserve can read. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  if (bytes.byteLength === 0) invalid('the body is empty; send the bytes of an .onnx file');
  let model: ModelProto;
  try {
    model = ModelProto.toObject(ModelProto.decode(bytes), decodeOpts) as ModelProto;
  } catch (e) {
    invalid(`the bytes are not an ONNX model (protobuf decoding failed: ${(e as Error).message}); truncated or not an .onnx file?`);
  }
  if (int64(model.ir_version) <= 0) invalid('the bytes are not an ONNX model: no ir_version');
  if (model.graph === undefined) invalid('the bytes are not an ONNX model: it has no graph');
  const g = model.graph;
  if ((g.node ?? []).length === 0 && (g.output ?? []).length === 0) invalid('the model\'s graph has neither nodes nor outputs');
  for (const [i, n] of (g.node ?? []).entries()) {
    if (typeof n.op_type !== 'string' || n.op_type === '') invalid(`graph.node[${i}] has no op_type`);
  }
  const external = (t: TensorProto): boolean => t.data_location === 1 || (t.external_data ?? []).length > 0;
  const ext = (g.initializer ?? []).filter(external).map((t) => t.name ?? '?');
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) if (a.t !== undefined && external(a.t)) ext.push(a.t.name ?? `${n.name ?? n.op_type}.${a.name}`);
  }
  if (ext.length > 0) {
    invalid(`the model keeps tensors in external data files (${ext.slice(0, 5).join(', ')}${ext.length > 5 ? ', ...' : ''}); save it with all tensors inside the .onnx file (onnx.save_model(m, path, save_as_external_data=False))`);
  }
  return model;
}

/** Decodes a serialized TensorProto (the `.pb` files of the ONNX backend test data). */
export function decodeTensorProto(bytes: Uint8Array): TensorProto {
  try {
    return TensorProtoType.toObject(TensorProtoType.decode(bytes), decodeOpts) as TensorProto;
  } catch (e) {
    invalid(`not a TensorProto: ${(e as Error).message}`);
  }
}

/** Encodes a model (tests and tools build small models with it). */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProto.encode(ModelProto.fromObject(model as Record<string, unknown>)).finish();
}
