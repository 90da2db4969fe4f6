/**
 * Open Inference Protocol (KServe v2) REST surface: health, server and model metadata, and inference over the graphs
 * of the model repository. Gradients come through the same `infer` call: a requested output named `grad:<wrt>` with
 * `parameters: {"of": "<value>"}`. Large tensors may travel in the Triton binary tensor data extension.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine, Tensors } from '../../engine.types.js';
import { GradserveError } from '../../errors.js';
import { nameMap } from '../../graph/names.js';
import type { Graph } from '../../graph/types.js';
import { parseDType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { decodeTensor, encodeTensor, tensorFromBytes } from '../../tensor/wire.js';
import { acceptsBinary, type BlobRef, FrameBuilder, layoutBlobs, sendFrame } from '../framing.js';
import { type Model, type ModelRepository, withParameters } from '../models.js';
import { attachLease } from '../recycle.js';
import { runWithLimits, type RunDeps } from '../run.js';
import { Tensor as TensorSchema } from '../schemas.js';
import { checkElements, checkGraphSize, encodeJsonTensor } from '../tensors.js';

export interface OipOptions extends RunDeps {
  engine: Engine;
  models: ModelRepository;
  version: string;
  isReady: () => boolean;
}

const Params = z.record(z.string(), z.unknown()).optional();
const InferBody = z.object({
  id: z.string().optional(),
  parameters: Params,
  inputs: z.array(z.object({
    name: z.string().min(1),
    shape: z.array(z.int().min(0)),
    datatype: z.string(),
    parameters: Params,
    data: TensorSchema.optional(),
  })),
  outputs: z.array(z.object({ name: z.string().min(1), parameters: Params })).optional(),
});
const VERSIONS = ['1'];
const ModelParams = z.object({ name: z.string(), version: z.string().optional() });

/** Metadata shapes use -1 for a dimension of any size, as the protocol does. */
function metaShape(shape: (number | null)[] | undefined): number[] {
  return shape === undefined ? [-1] : shape.map((d) => (d === null ? -1 : d));
}

function modelOutputsMeta(engine: Engine, graph: Graph, parameters: Readonly<Tensors>): { name: string; datatype: string; shape: number[] }[] {
  const names = graph.outputs ?? [];
  // Infer twice with unknown dims set to 1 and to 2: the dims that move are the variable ones.
  const probe = (size: number) => {
    const specs: Record<string, { shape: number[]; datatype: ReturnType<typeof parseDType> & string }> = {};
    for (const [n, s] of Object.entries(graph.inputs ?? {})) {
      const stored = Object.hasOwn(parameters, n) ? parameters[n] : undefined;
      if (stored !== undefined) {
        specs[n] = { shape: [...stored.shape], datatype: stored.dtype };
        continue;
      }
      if (s.shape === undefined) return undefined;
      specs[n] = { shape: s.shape.map((d) => d ?? size), datatype: parseDType(s.datatype ?? 'FP32') ?? 'FP32' };
    }
    try {
      return engine.shapes(graph, specs).values;
    } catch {
      return undefined;
    }
  };
  const a = probe(1);
  const b = probe(2);
  return names.map((name) => {
    const va = a?.[name];
    const vb = b?.[name];
    if (va === undefined) return { name, datatype: 'FP32', shape: [-1] };
    const shape = vb !== undefined && vb.shape.length === va.shape.length ? va.shape.map((d, i) => (vb.shape[i] === d ? d : -1)) : va.shape.map(() => -1);
    return { name, datatype: va.datatype, shape };
  });
}

export async function oipRoutes(app: FastifyInstance, opts: OipOptions): Promise<void> {
  const { engine, models, config } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v2/health/live', { schema: { tags: ['v2'], summary: 'Liveness' } }, async () => ({ live: true }));
  r.get('/v2/health/ready', { schema: { tags: ['v2'], summary: 'Readiness (503 while shutting down)' } }, async (_req, reply) => {
    if (!opts.isReady()) return reply.code(503).send({ ready: false });
    return { ready: true };
  });
  r.get('/v2', { schema: { tags: ['v2'], summary: 'Server metadata' } }, async () => ({
    name: 'gradserve',
    version: opts.version,
    extensions: ['binary_tensor_data'],
  }));

  // A repository file is one model with exactly one version, "1"; any other version does not exist (404).
  const model = async (p: { name: string; version?: string | undefined }): Promise<Model> => {
    const m = await models.get(p.name);
    if (p.version !== undefined && !VERSIONS.includes(p.version)) {
      throw new GradserveError('NOT_FOUND', `model "${p.name}" has no version "${p.version}" (its versions: ${VERSIONS.map((v) => `"${v}"`).join(', ')})`);
    }
    return m;
  };
  // Parameters are listed apart from the inputs: OIP clients treat every listed input as required.
  const metadata = async (p: { name: string; version?: string | undefined }) => {
    const m = await model(p);
    const graph = m.graph;
    const name = p.name;
    return {
      name,
      versions: VERSIONS,
      platform: 'gradserve',
      inputs: Object.entries(graph.inputs ?? {})
        .filter(([n]) => !Object.hasOwn(m.parameters, n))
        .map(([n, s]) => ({ name: n, datatype: parseDType(s.datatype ?? 'FP32') ?? s.datatype ?? 'FP32', shape: metaShape(s.shape) })),
      outputs: modelOutputsMeta(engine, graph, m.parameters),
      ...(m.parameterInfo.length > 0 ? { parameters: m.parameterInfo } : {}),
    };
  };
  for (const url of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    r.get(url, { schema: { tags: ['v2'], summary: 'Model metadata', params: ModelParams } }, async (req) => metadata(req.params));
    r.get(`${url}/ready`, { schema: { tags: ['v2'], summary: 'Model readiness', params: ModelParams } }, async (req) => {
      await model(req.params);
      return { name: req.params.name, ready: true };
    });
    r.post(`${url}/infer`, {
      // Large request bodies and results live in recycled buffers (src/server/recycle.ts).
      onRequest: (req, reply, done) => {
        if (opts.recycler !== undefined) attachLease(req, reply, opts.recycler);
        done();
      },
      schema: { tags: ['v2'], summary: 'Inference (and gradients via outputs named grad:<wrt>)', params: ModelParams, body: InferBody },
    }, async (req, reply) => {
      const body = req.body;
      const m = await model(req.params);
      const graph = m.graph;
      checkGraphSize(graph, config.maxNodes);

      // Inputs: JSON data, or bytes from the binary section, back to back in the order the inputs are listed (the
      // Triton binary tensor data extension); each viewed in place when aligned for its datatype.
      const inputs: Tensors = nameMap();
      const bin = req.binaryPayload;
      const refs: BlobRef[] = [];
      const binary: number[] = [];
      body.inputs.forEach((inp, i) => {
        const path = `inputs[${i}]`;
        checkElements(inp, path, config.maxTensorElements);
        const size = inp.parameters?.binary_data_size;
        if (size === undefined) {
          inputs[inp.name] = decodeTensor({ shape: inp.shape, datatype: inp.datatype, data: inp.data }, path);
          return;
        }
        const sizePath = `${path}.parameters.binary_data_size`;
        if (bin === null) {
          throw new GradserveError('INVALID_TENSOR', `input "${inp.name}": binary_data_size ${String(size)} needs a binary section (Inference-Header-Content-Length)`, { errors: [{ path: sizePath, message: 'the body has no binary section' }] });
        }
        refs.push({ label: `input "${inp.name}"`, sizePath, offsetPath: sizePath, size, offset: undefined });
        binary.push(i);
      });
      if (bin !== null) {
        const spans = layoutBlobs(refs, bin.length);
        binary.forEach((i, k) => {
          const inp = body.inputs[i]!;
          inputs[inp.name] = tensorFromBytes(bin.subarray(spans[k]!.start, spans[k]!.end), inp.shape, inp.datatype, `inputs[${i}]`, { view: true });
        });
      }

      const requested = body.outputs ?? (graph.outputs ?? []).map((name) => ({ name, parameters: undefined }));
      // Triton clients ask with binary_data_output and get the blobs back to back; `Accept: application/octet-stream`
      // (the /v1 convention) asks for every output framed, each blob 64-byte aligned.
      const accepted = body.parameters?.binary_data_output === undefined && acceptsBinary(req.headers.accept);
      const allBinary = body.parameters?.binary_data_output === true || accepted;
      const plain: string[] = [];
      const grads = new Map<string, string[]>();
      for (const o of requested) {
        if (!o.name.startsWith('grad:')) {
          plain.push(o.name);
          continue;
        }
        // The output's own parameters.of, else the request's (all a stock Triton client can set), else the only output.
        let of = o.parameters?.of ?? body.parameters?.of;
        if (of === undefined && graph.outputs?.length === 1) of = graph.outputs[0];
        if (typeof of !== 'string') {
          throw new GradserveError('INVALID_REQUEST', `output "${o.name}" needs parameters.of (on the output or the request) naming the value to differentiate`);
        }
        grads.set(of, [...(grads.get(of) ?? []), o.name.slice('grad:'.length)]);
      }

      // How the answer writes each requested output: its size is checked before anything runs.
      const asBinary = (o: (typeof requested)[number]): boolean => o.parameters?.binary_data === true || (allBinary && o.parameters?.binary_data !== false);
      const answered = new Map(requested.map((o) => [o.name, asBinary(o) ? 'binary' as const : 'json' as const]));
      const values = new Map<string, Tensor>();
      const all = withParameters(m, inputs);
      await runWithLimits(req, reply, opts, async (ro) => {
        if (plain.length > 0 || grads.size === 0) {
          const res = await engine.evaluate(graph, all, plain, ro);
          for (const n of plain) if (res.outputs[n] !== undefined) values.set(n, res.outputs[n]!);
        }
        for (const [of, wrt] of grads) {
          const res = await engine.grad(graph, all, of, wrt, ro);
          for (const w of wrt) if (res.gradients[w] !== undefined) values.set(`grad:${w}`, res.gradients[w]!);
        }
      }, (name) => answered.get(name));

      // Binary outputs back to back (alignment 1): Triton clients find each blob by adding up the sizes before it. Each
      // also carries its binary_data_offset, which they ignore.
      const frame = new FrameBuilder(accepted ? undefined : 1);
      let framed = false;
      const outputs = requested.map((o) => {
        const t = values.get(o.name);
        if (t === undefined) throw new GradserveError('UNKNOWN_VALUE', `output "${o.name}" names no value of model "${req.params.name}"`);
        if (asBinary(o)) {
          framed = true;
          const { binary_data_offset, binary_data_size } = frame.add(t);
          return { name: o.name, datatype: t.dtype, shape: [...t.shape], parameters: { binary_data_size, binary_data_offset } };
        }
        return { name: o.name, ...encodeJsonTensor(t, 'string') };
      });
      const result = { model_name: req.params.name, model_version: req.params.version ?? '1', ...(body.id === undefined ? {} : { id: body.id }), outputs };
      return framed ? sendFrame(reply, result, frame) : result;
    });
  }
}
