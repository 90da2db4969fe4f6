/**
 * Request and response schemas of the HTTP API (API.md "Endpoints"). The same zod objects validate requests and
 * generate /openapi.json. Tensor payloads are `z.unknown()` with a documented JSON Schema: zod would walk every element
 * of a 10^7-number array, while src/tensor/wire.ts checks them in one tight loop and reports INVALID_TENSOR.
 */
import { z } from 'zod';
import type { WireTensor } from '../graph/types.js';

const DATATYPES = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL', 'float32', 'float64', 'int32', 'int64', 'bool'];

const tensorObjectJson = {
  type: 'object',
  properties: {
    shape: { type: 'array', items: { type: 'integer', minimum: 0 }, description: '`[]` is a scalar' },
    datatype: { type: 'string', enum: DATATYPES, description: 'default: the datatype the graph declares for this input, else FP32' },
    data: { type: 'array', description: 'row-major, flat or nested; non-finite values as "NaN", "Infinity", "-Infinity"' },
    b64: { type: 'string', description: 'base64 of the little-endian row-major bytes' },
  },
};

const byteCount = { type: 'integer', minimum: 0 };
/** A tensor whose bytes are in the binary section of a framed body (API.md "Binary framing"). */
const binaryTensorJson = {
  type: 'object',
  description: 'Binary framing only (Content-Type application/octet-stream with Inference-Header-Content-Length): the little-endian row-major bytes are in the binary section after the JSON header',
  required: ['shape', 'datatype', 'binary_data_size'],
  properties: {
    shape: tensorObjectJson.properties.shape,
    datatype: tensorObjectJson.properties.datatype,
    binary_data_size: { ...byteCount, description: 'exactly the product of shape times the datatype width (BOOL 1, INT32/FP32 4, INT64/FP64 8)' },
    binary_data_offset: { ...byteCount, description: 'from the start of the binary section; default: right after the previous binary tensor in the JSON text (the first at 0). Every byte of the section belongs to exactly one tensor.' },
  },
};

export const Tensor = z.unknown().meta({
  description: 'A tensor: {shape, datatype, data | b64}, or in a framed body {shape, datatype, binary_data_size, binary_data_offset?}; inside `inputs` also a bare number (scalar) or a nested array.',
  anyOf: [tensorObjectJson, binaryTensorJson, { type: 'number' }, { type: 'array' }],
});

export const TensorOut = z.unknown().meta({
  description: 'A tensor as returned: {shape, datatype, data} (flat), {shape, datatype, b64} with `encoding: "b64"`, or in a framed answer (`encoding: "binary"` or `Accept: application/octet-stream`) {shape, datatype, binary_data_offset, binary_data_size} with each blob 64-byte aligned in the binary section.',
  anyOf: [
    tensorObjectJson,
    { ...binaryTensorJson, description: 'binary framing: the bytes are in the binary section of the answer', required: ['shape', 'datatype', 'binary_data_offset', 'binary_data_size'] },
  ],
});

const Name = z.string().min(1);
/** A list of names, exactly as API.md types it (a bare string is a schema violation, not a one-element list). */
const Names = z.array(Name);

export const InputSpec = z.object({
  shape: z.array(z.int().min(0).nullable()).optional().describe('`null` for a dimension of any size; omit for any rank'),
  datatype: z.string().optional(),
});

export const NodeSpec = z.object({
  name: Name,
  op: z.string().min(1),
  inputs: z.array(z.string()).default([]),
  attrs: z.record(z.string(), z.unknown()).optional(),
});

export const Graph = z
  .object({
    inputs: z.record(z.string(), InputSpec).optional(),
    constants: z.record(z.string(), Tensor as z.ZodType<WireTensor>).optional(),
    nodes: z.array(NodeSpec),
    outputs: z.array(z.string()).optional(),
  })
  .meta({ description: 'A computation graph (API.md "Graphs").' });

const Encoding = z
  .enum(['json', 'b64', 'binary'])
  .optional()
  .describe('How every tensor of the response is written: json (flat data), b64, or binary (a framed answer, see Inference-Header-Content-Length). Default json, or binary when Accept names application/octet-stream');
const Tensors = z.record(z.string(), Tensor);

/** Either an inline graph or the name of a repository model, never both (API.md "Models by reference"). */
const graphOrModel = {
  graph: Graph.optional().describe('the graph; give either `graph` or `model`'),
  model: Name.optional().describe('the name of a repository model (its graph, with its stored parameters as default inputs); give either `graph` or `model`'),
};

/** Both or neither of `graph` and `model` is INVALID_REQUEST, pointing at both fields. */
function oneSource(b: { graph?: unknown; model?: unknown }, ctx: z.RefinementCtx): void {
  const hasGraph = b.graph !== undefined;
  if (hasGraph === (b.model !== undefined)) {
    const message = hasGraph ? 'give either graph or model, not both' : 'give either graph (a graph) or model (the name of a repository model)';
    ctx.addIssue({ code: 'custom', path: ['graph'], message });
  }
}
const source = <T extends z.ZodType<{ graph?: unknown; model?: unknown }>>(schema: T) => schema.superRefine(oneSource);

const base = {
  ...graphOrModel,
  inputs: Tensors.default({}).describe('tensors by input name; a model\'s parameters may be left out (their stored values are used)'),
  encoding: Encoding,
};

export const EvaluateBody = source(z.object({ ...base, outputs: z.array(Name).optional() }));
const Batched = z
  .boolean()
  .optional()
  .describe('Batched derivatives: every tensor of the seed field (cotangents, tangents, vectors) carries one extra leading axis of size B (the same for all; B may be 0), and every result gets it too: B products in one vectorized pass. `outputs` (and an hvp\'s `gradients`) stay plain. The `Gradserve-Batching` response header says how the batch ran.');
export const PerExample = z
  .object({
    axis: z.int().describe('the example axis of every named input (negative counts from the end)'),
    inputs: z.array(Name).min(1).describe('graph inputs sliced into examples along `axis` (e.g. the data and its labels)'),
  })
  .describe('Per-example gradients: the gradient of `of` for each slice of the named inputs along `axis`, as if the graph ran on that slice alone (the axis kept at size 1), in one vectorized pass. A sliced input\'s gradient has that input\'s shape (slice i holds example i\'s gradient); any other `wrt` value\'s gets a new leading axis of size N. `outputs` are the whole batch\'s.');

export const GradBody = source(z.object({ ...base, of: Name, wrt: Names, per_example: PerExample.optional() }));
export const VjpBody = source(z.object({ ...base, cotangents: Tensors, wrt: Names, batched: Batched }));
export const JvpBody = source(z.object({ ...base, tangents: Tensors, of: Names.optional(), batched: Batched }));
export const JacobianBody = source(z.object({ ...base, of: Names, wrt: Names, mode: z.enum(['auto', 'forward', 'reverse']).default('auto') }));
export const HvpBody = source(z.object({ ...base, of: Name, vectors: Tensors, batched: Batched }));
export const HessianBody = source(z.object({ ...base, of: Name, wrt: Names }));
export const GradcheckBody = source(z.object({
  ...base,
  of: Name,
  wrt: Names,
  eps: z.number().positive().optional(),
  atol: z.number().min(0).optional(),
  rtol: z.number().min(0).optional(),
}));

export const TransformBody = source(z.discriminatedUnion('transform', [
  z.object({ ...graphOrModel, transform: z.literal('grad'), of: Name, wrt: Names, encoding: Encoding }),
  z.object({ ...graphOrModel, transform: z.literal('vjp'), of: Names, wrt: Names, encoding: Encoding }),
  z.object({ ...graphOrModel, transform: z.literal('jvp'), wrt: Names, of: Names.optional(), encoding: Encoding }),
]));

/** A transform's `of` and `wrt` go with the transform they belong to (the same rules as /v1/transform). */
function renderFields(b: { transform?: string | undefined; of?: unknown; wrt?: unknown }, ctx: z.RefinementCtx): void {
  if (b.transform === undefined) {
    for (const k of ['of', 'wrt'] as const) {
      if (b[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${k} belongs to a transform: give "transform" too, or leave ${k} out` });
    }
    return;
  }
  if (b.wrt === undefined) ctx.addIssue({ code: 'custom', path: ['wrt'], message: `a ${b.transform} transform needs wrt (a list of value names)` });
  if (b.transform === 'grad' && typeof b.of !== 'string') ctx.addIssue({ code: 'custom', path: ['of'], message: 'a grad transform needs of: the name of a one-element value' });
  if (b.transform === 'vjp' && !Array.isArray(b.of)) ctx.addIssue({ code: 'custom', path: ['of'], message: 'a vjp transform needs of: a list of value names' });
  if (b.transform === 'jvp' && b.of !== undefined && !Array.isArray(b.of)) ctx.addIssue({ code: 'custom', path: ['of'], message: 'of of a jvp transform is a list of value names' });
}

export const RenderBody = source(z.object({
  ...graphOrModel,
  transform: z.enum(['grad', 'vjp', 'jvp']).optional().describe('draw this derivative graph (as /v1/transform builds it) beside the graph'),
  of: z.union([Name, Names]).optional().describe('as /v1/transform: one value name for grad, a list for vjp and jvp'),
  wrt: Names.optional().describe('as /v1/transform: the values to differentiate with respect to (tangent inputs for jvp)'),
  parameters: Names.optional().describe('graph inputs to draw as parameters (weights) rather than data; a model\'s stored parameters always are'),
}).superRefine(renderFields));

export const RenderQuery = z.object({
  format: z.enum(['svg', 'dot']).default('svg').describe('svg (default): the picture, laid out by Graphviz; dot: the Graphviz text, not laid out'),
});

export const ShapesBody = source(z.object({
  ...graphOrModel,
  encoding: Encoding,
  inputs: z
    .record(z.string(), Tensor)
    .default({})
    .describe('tensors, or `{shape, datatype}` without data'),
}));

// Responses (documentation; the handlers build these objects directly).
const TensorMap = z.record(z.string(), TensorOut);
export const EvaluateResponse = z.object({ outputs: TensorMap });
export const GradResponse = z.object({ outputs: TensorMap, gradients: TensorMap });
export const JvpResponse = z.object({ outputs: TensorMap, tangents: TensorMap });
export const JacobianResponse = z.object({ outputs: TensorMap, jacobians: z.record(z.string(), TensorMap), mode: z.enum(['forward', 'reverse']) });
export const HvpResponse = z.object({ outputs: TensorMap, gradients: TensorMap, hvp: TensorMap });
export const HessianResponse = z.object({ outputs: TensorMap, hessians: z.record(z.string(), TensorMap) });
const Figures = { ok: z.boolean(), maxAbsError: z.unknown(), maxRelError: z.unknown() };
export const GradcheckResponse = z.object({ ...Figures, perInput: z.record(z.string(), z.object(Figures)) });
export const TransformResponse = z.object({ graph: Graph });
export const ShapesResponse = z.object({
  values: z.record(z.string(), z.object({ shape: z.array(z.int()), datatype: z.string() })),
  flops: z.number(),
  peakBytes: z.number(),
});
export const OpsResponse = z.object({
  ops: z.array(
    z.object({
      name: z.string(),
      inputs: z.union([z.array(z.string()), z.object({ variadic: z.string(), min: z.int() })]),
      attrs: z.record(z.string(), z.unknown()),
      outputDatatype: z.string(),
      differentiable: z.boolean(),
      conventions: z.array(z.string()),
    }),
  ),
});

export const ProblemResponse = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ description: 'application/problem+json (RFC 9457) with a catalogue `code`' });

export type EvaluateBodyT = z.infer<typeof EvaluateBody>;
