/** POST /v1/render: a picture of a graph and, with `transform`, of its derivative graph beside it (API.md "Render"). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine, TransformSpec } from '../../engine.types.js';
import { GradserveError, fail } from '../../errors.js';
import type { Graph, InputSpec } from '../../graph/types.js';
import { bindBinaryTensors } from '../binary_tensors.js';
import type { ServerConfig } from '../config.js';
import type { Model, ModelRepository } from '../models.js';
import { buildScene, toDot } from '../render/dot.js';
import { layoutSvg } from '../render/svg.js';
import * as S from '../schemas.js';
import { checkGraphSize } from '../tensors.js';

export interface RenderOptions {
  config: ServerConfig;
  engine: Engine;
  models: ModelRepository;
}

export const SVG_TYPE = 'image/svg+xml; charset=utf-8';
export const DOT_TYPE = 'text/vnd.graphviz; charset=utf-8';

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: S.ProblemResponse } } });

/** A model's graph with its parameters' stored shapes and datatypes declared where the graph leaves them open. */
function declareParameters(model: Model): Graph {
  if (model.parameterInfo.length === 0) return model.graph;
  const inputs: Record<string, InputSpec> = { ...(model.graph.inputs ?? {}) };
  for (const p of model.parameterInfo) {
    const d = Object.hasOwn(inputs, p.name) ? inputs[p.name]! : {};
    inputs[p.name] = { ...d, shape: d.shape?.every((x) => x !== null) ? d.shape : [...p.shape], datatype: d.datatype ?? p.datatype };
  }
  return { ...model.graph, inputs };
}

function transformSpec(b: z.infer<typeof S.RenderBody>): TransformSpec | undefined {
  switch (b.transform) {
    case undefined:
      return undefined;
    case 'grad':
      return { transform: 'grad', of: b.of as string, wrt: b.wrt! };
    case 'vjp':
      return { transform: 'vjp', of: b.of as string[], wrt: b.wrt! };
    case 'jvp':
      return { transform: 'jvp', wrt: b.wrt!, ...(b.of === undefined ? {} : { of: b.of as string[] }) };
  }
}

function caption(spec: TransformSpec): string {
  const list = (xs: readonly string[]): string => xs.join(', ');
  switch (spec.transform) {
    case 'grad':
      return `grad of ${spec.of} with respect to ${list(spec.wrt)}`;
    case 'vjp':
      return `vjp of ${list(spec.of)} with respect to ${list(spec.wrt)}`;
    case 'jvp':
      return `jvp with tangents of ${list(spec.wrt)}${spec.of === undefined ? '' : `, of ${list(spec.of)}`}`;
  }
}

export async function renderRoutes(app: FastifyInstance, opts: RenderOptions): Promise<void> {
  const { config, engine, models } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();

  // The same body forms as every v1 endpoint, binary framing included (graph constants in the binary section).
  app.addHook('preValidation', bindBinaryTensors(config.maxTensorElements));

  r.post('/v1/render', {
    schema: {
      summary: 'A picture of the graph and its derivative graph (SVG, or Graphviz DOT)',
      description: 'Nodes are labelled with their op, name, output shape and datatype; inputs, parameters and constants are told apart. '
        + 'With `transform` (and its `of`, `wrt` as /v1/transform takes them) the derivative graph is drawn beside the forward graph: '
        + 'dashed edges link the forward values it reads, and what its pruning dropped is left out. '
        + `SVG is laid out by Graphviz for at most GRADSERVE_RENDER_MAX_NODES drawn values (default 150); \`?format=dot\` returns the Graphviz text.`,
      tags: ['v1'],
      querystring: S.RenderQuery,
      body: S.RenderBody,
      response: {
        200: {
          description: 'The picture: SVG (`image/svg+xml`), or Graphviz DOT text (`text/vnd.graphviz`) with `?format=dot`',
          content: { 'image/svg+xml': { schema: z.string() }, 'text/vnd.graphviz': { schema: z.string() } },
        },
        400: problem('INVALID_JSON, INVALID_REQUEST or INVALID_TENSOR'),
        401: problem('UNAUTHORIZED (when API keys are configured)'),
        404: problem('NOT_FOUND: `model` names no repository model'),
        413: problem('TOO_LARGE: more values to lay out than GRADSERVE_RENDER_MAX_NODES (SVG), or a graph over GRADSERVE_MAX_NODES'),
        422: problem('the graph or the transform does not make sense: UNKNOWN_OP, UNKNOWN_VALUE, SHAPE_MISMATCH, NOT_DIFFERENTIABLE, ...'),
        503: problem('MODEL_UNAVAILABLE: the model named by `model` failed to load'),
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const model = b.model === undefined ? undefined : await models.get(b.model);
    const forward = model === undefined ? b.graph! : declareParameters(model);
    checkGraphSize(forward, config.maxNodes);

    const parameters = new Set(model?.parameterInfo.map((p) => p.name));
    (b.parameters ?? []).forEach((p, i) => {
      if (!Object.hasOwn(forward.inputs ?? {}, p)) fail('UNKNOWN_VALUE', `parameters[${i}]: "${p}" names no graph input`, `parameters[${i}]`);
      parameters.add(p);
    });

    const spec = transformSpec(b);
    const derivative = spec === undefined ? undefined : { graph: engine.transform(forward, spec), caption: caption(spec) };
    const scene = buildScene({ forward, parameters, ...(derivative === undefined ? {} : { derivative }) });
    const dot = toDot(scene);
    if (req.query.format === 'dot') return reply.type(DOT_TYPE).send(dot);

    if (scene.values.length > config.renderMaxNodes) {
      const message = `the picture would have ${scene.values.length} values (nodes, inputs and constants), over the limit of ${config.renderMaxNodes} for SVG (GRADSERVE_RENDER_MAX_NODES); ask for ?format=dot to lay it out elsewhere, or draw a smaller graph`;
      throw new GradserveError('TOO_LARGE', message, { errors: [{ path: model === undefined ? 'graph.nodes' : 'model', message }] });
    }
    return reply.type(SVG_TYPE).send(await layoutSvg(dot));
  });
}
