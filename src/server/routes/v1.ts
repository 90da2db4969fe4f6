/** The v1 derivative API (API.md "Endpoints"). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { BatchingReport, Engine, GradcheckFigures, RunOptions, Tensors } from '../../engine.types.js';
import { nameMap } from '../../graph/names.js';
import type { Graph, ValueInfo, WireTensor } from '../../graph/types.js';
import type { Tensor } from '../../tensor/tensor.js';
import { parseDType } from '../../tensor/dtype.js';
import { decodeTensor } from '../../tensor/wire.js';
import { bindBinaryTensors } from '../binary_tensors.js';
import { type Model, type ModelRepository, withParameters } from '../models.js';
import * as S from '../schemas.js';
import type { RunDeps } from '../run.js';
import { runWithLimits } from '../run.js';
import { attachLease } from '../recycle.js';
import { checkGraphSize, decodeInputs, decodeKeyed, decodeShapeInputs, jsonNumber, type ResponseEncoding, ResponseTensors, responseEncoding } from '../tensors.js';

/** Response header of batched requests (see reportBatching). */
export const BATCHING_HEADER = 'gradserve-batching';

export interface V1Options extends RunDeps {
  engine: Engine;
  models: ModelRepository;
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: S.ProblemResponse } } });
const errorResponses = {
  400: problem('INVALID_JSON, INVALID_REQUEST or INVALID_TENSOR'),
  401: problem('UNAUTHORIZED (when API keys are configured)'),
  413: problem('TOO_LARGE: body, tensor, node count or estimated memory over its limit'),
  422: problem('the graph or the request does not make sense: UNKNOWN_OP, SHAPE_MISMATCH, NOT_DIFFERENTIABLE, ...'),
  404: problem('NOT_FOUND: `model` names no repository model'),
  503: problem('OVERLOADED: the server-wide memory budget is taken (see Retry-After); MODEL_UNAVAILABLE: the model named by `model` failed to load'),
  504: problem('DEADLINE_EXCEEDED'),
};

/**
 * How a batched request ran, as the `Gradserve-Batching` response header: `vectorized; size=B; chunk=C; passes=P`,
 * or `loop; size=B; passes=P; reason="..."` when some op could not be vectorized (also logged as a warning).
 */
function reportBatching(req: FastifyRequest, reply: FastifyReply, report: BatchingReport | undefined): void {
  if (report === undefined) return;
  const parts = [report.vectorized ? 'vectorized' : 'loop', `size=${report.size}`, `chunk=${report.chunk}`, `passes=${report.passes}`];
  if (report.reason !== undefined) parts.push(`reason=${JSON.stringify(report.reason.replace(/[^\x20-\x7e]/g, '?'))}`);
  reply.header(BATCHING_HEADER, parts.join('; '));
  if (!report.vectorized) req.log.warn({ batching: report }, 'a batched request ran as a loop of single passes (slower, same numbers)');
}

function figures(f: GradcheckFigures): { ok: boolean; maxAbsError: number | string; maxRelError: number | string } {
  return { ok: f.ok, maxAbsError: jsonNumber(f.maxAbsError), maxRelError: jsonNumber(f.maxRelError) };
}

export async function v1Routes(app: FastifyInstance, opts: V1Options): Promise<void> {
  const { engine, config, models } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();

  // Large request bodies and results of these routes live in recycled buffers (src/server/recycle.ts).
  const recycler = opts.recycler;
  if (recycler !== undefined) {
    app.addHook('onRequest', (req, reply, done) => {
      attachLease(req, reply, recycler);
      done();
    });
  }

  // Binary framing: tensors in a framed body's binary section are bound to their JSON objects before the schema check.
  app.addHook('preValidation', bindBinaryTensors(config.maxTensorElements));

  /** The request's graph: inline, or a repository model's (the schema lets exactly one of them through). */
  async function source(body: { graph?: Graph | undefined; model?: string | undefined }): Promise<{ graph: Graph; model: Model | undefined }> {
    if (body.model === undefined) return { graph: body.graph!, model: undefined };
    const model = await models.get(body.model);
    return { graph: model.graph, model };
  }

  /**
   * Common prologue of every tensor endpoint: the graph, size limits, input decoding (a model's stored parameters
   * under the request's tensors), then the engine call under limits.
   */
  async function run<T>(
    req: FastifyRequest,
    reply: FastifyReply,
    body: { graph?: Graph | undefined; model?: string | undefined; inputs: Record<string, unknown>; encoding?: ResponseEncoding | undefined },
    call: (graph: Graph, inputs: Tensors, o: RunOptions) => Promise<T>,
    answersTensors = true,
  ): Promise<T> {
    const { graph, model } = await source(body);
    checkGraphSize(graph, config.maxNodes);
    const inputs = withParameters(model, decodeInputs(graph, body.inputs, config.maxTensorElements));
    // Every tensor the engine returns is in the answer, in the answer's one encoding (gradcheck answers figures).
    const encoding = responseEncoding(req, body.encoding);
    return runWithLimits(req, reply, opts, (o) => call(graph, inputs, o), answersTensors ? () => encoding : undefined);
  }
  const keyed = (graph: Graph, inputs: Tensors, wire: Record<string, unknown>, field: string): Tensors =>
    decodeKeyed(engine, graph, inputs, wire, field, config.maxTensorElements);
  const writer = (req: FastifyRequest, e: ResponseEncoding | undefined): ResponseTensors => new ResponseTensors(responseEncoding(req, e));

  r.post('/v1/evaluate', {
    schema: { summary: 'Evaluate graph outputs', tags: ['v1'], body: S.EvaluateBody, response: { 200: S.EvaluateResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) => engine.evaluate(g, inputs, b.outputs, o));
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs) });
  });

  r.post('/v1/grad', {
    schema: { summary: 'Gradient of a one-element value', tags: ['v1'], body: S.GradBody, response: { 200: S.GradResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) =>
      engine.grad(g, inputs, b.of, b.wrt, b.per_example === undefined ? o : { ...o, per_example: b.per_example }));
    reportBatching(req, reply, res.batching);
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), gradients: w.map(res.gradients) });
  });

  r.post('/v1/vjp', {
    schema: { summary: 'Vector-Jacobian product', tags: ['v1'], body: S.VjpBody, response: { 200: S.GradResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) =>
      engine.vjp(g, inputs, keyed(g, inputs, b.cotangents, 'cotangents'), b.wrt, { ...o, batched: b.batched === true }));
    reportBatching(req, reply, res.batching);
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), gradients: w.map(res.gradients) });
  });

  r.post('/v1/jvp', {
    schema: { summary: 'Jacobian-vector product', tags: ['v1'], body: S.JvpBody, response: { 200: S.JvpResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) =>
      engine.jvp(g, inputs, keyed(g, inputs, b.tangents, 'tangents'), b.of, { ...o, batched: b.batched === true }));
    reportBatching(req, reply, res.batching);
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), tangents: w.map(res.tangents) });
  });

  r.post('/v1/jacobian', {
    schema: { summary: 'Full Jacobian (forward or reverse mode)', tags: ['v1'], body: S.JacobianBody, response: { 200: S.JacobianResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) => engine.jacobian(g, inputs, b.of, b.wrt, b.mode, o));
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), jacobians: w.nested(res.jacobians), mode: res.mode });
  });

  r.post('/v1/hvp', {
    schema: { summary: 'Hessian-vector product', tags: ['v1'], body: S.HvpBody, response: { 200: S.HvpResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) =>
      engine.hvp(g, inputs, b.of, keyed(g, inputs, b.vectors, 'vectors'), { ...o, batched: b.batched === true }));
    reportBatching(req, reply, res.batching);
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), gradients: w.map(res.gradients), hvp: w.map(res.hvp) });
  });

  r.post('/v1/hessian', {
    schema: { summary: 'Full Hessian', tags: ['v1'], body: S.HessianBody, response: { 200: S.HessianResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const res = await run(req, reply, b, (g, inputs, o) => engine.hessian(g, inputs, b.of, b.wrt, o));
    const w = writer(req, b.encoding);
    return w.send(reply, { outputs: w.map(res.outputs), hessians: w.nested(res.hessians) });
  });

  r.post('/v1/gradcheck', {
    schema: { summary: 'Analytic vs finite-difference gradients (FP64)', tags: ['v1'], body: S.GradcheckBody, response: { 200: S.GradcheckResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const check = { eps: b.eps, atol: b.atol, rtol: b.rtol };
    const res = await run(req, reply, b, (g, inputs, o) => engine.gradcheck(g, inputs, b.of, b.wrt, check, o), false);
    const perInput: Record<string, ReturnType<typeof figures>> = nameMap();
    for (const [k, f] of Object.entries(res.perInput)) perInput[k] = figures(f);
    return writer(req, b.encoding).send(reply, { ...figures(res), perInput });
  });

  r.post('/v1/transform', {
    schema: { summary: 'Symbolic differentiation: returns a new graph', tags: ['v1'], body: S.TransformBody, response: { 200: S.TransformResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const { graph: given } = await source(b);
    checkGraphSize(given, config.maxNodes);
    const spec = b.transform === 'grad'
      ? { transform: 'grad' as const, of: b.of, wrt: b.wrt }
      : b.transform === 'vjp'
        ? { transform: 'vjp' as const, of: b.of, wrt: b.wrt }
        : { transform: 'jvp' as const, wrt: b.wrt, ...(b.of === undefined ? {} : { of: b.of }) };
    const graph = upperCaseDatatypes(engine.transform(given, spec));
    const w = writer(req, b.encoding);
    if (w.encoding !== 'binary' || graph.constants === undefined) return w.send(reply, { graph });
    // Binary: the derivative graph's constants (the request's, and those the rules added) go in the binary section.
    const constants: Record<string, WireTensor> = nameMap();
    for (const [k, c] of Object.entries(graph.constants)) constants[k] = w.tensor(decodeTensor(c, `graph.constants.${k}`));
    return w.send(reply, { graph: { ...graph, constants } });
  });

  r.post('/v1/shapes', {
    schema: { summary: 'Shape inference and cost estimate (nothing executed)', tags: ['v1'], body: S.ShapesBody, response: { 200: S.ShapesResponse, ...errorResponses } },
  }, async (req, reply) => {
    const b = req.body;
    const { graph, model } = await source(b);
    checkGraphSize(graph, config.maxNodes);
    const inputs = Object.assign(nameMap<Tensor | ValueInfo>(), model?.parameters, decodeShapeInputs(graph, b.inputs, config.maxTensorElements));
    // Nothing runs, but a graph this accepts should be one evaluate would run: the same limits on every value.
    const res = engine.shapes(graph, inputs, { maxTensorElements: config.maxTensorElements, maxNodes: config.maxNodes });
    return writer(req, b.encoding).send(reply, res);
  });

  r.get('/v1/ops', {
    schema: { summary: 'The op catalogue', tags: ['v1'], response: { 200: S.OpsResponse } },
  }, async () => ({ ops: engine.ops() }));
}

/** A returned graph with its inputs' and constants' datatypes in the upper-case form responses use (`float64` -> `FP64`). */
function upperCaseDatatypes(graph: Graph): Graph {
  const canon = <T extends { datatype?: unknown }>(o: T): T => {
    const d = typeof o.datatype === 'string' ? parseDType(o.datatype) : undefined;
    return d === undefined || d === o.datatype ? o : { ...o, datatype: d };
  };
  const inputs = graph.inputs === undefined ? undefined : Object.fromEntries(Object.entries(graph.inputs).map(([k, v]) => [k, canon(v)]));
  const constants = graph.constants === undefined ? undefined : Object.fromEntries(Object.entries(graph.constants).map(([k, v]) => [k, canon(v)]));
  return { ...graph, ...(inputs === undefined ? {} : { inputs }), ...(constants === undefined ? {} : { constants }) };
}
