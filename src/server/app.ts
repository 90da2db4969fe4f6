/**
 * buildApp(config): the whole HTTP service as a Fastify instance that is never listening (tests use `inject`; only
 * src/cli.ts listens).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Tracer } from '@opentelemetry/api';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { Engine } from '../engine.types.js';
import { kernels } from '../kernels.js';
import { MemoryAdmission } from './admission.js';
import { installAuth } from './auth.js';
import { stringifyBig } from './bigjson.js';
import { installBodyParsing, validatorCompiler, type BodyParsingOptions } from './body.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { installMemoryTrim } from './memory.js';
import { BufferRecycler } from './recycle.js';
import { createMetrics, installMetrics, type Metrics } from './metrics.js';
import { ModelRepository } from './models.js';
import { documentBinaryFraming } from './openapi.js';
import { answerInFlight, installDrain } from './drain.js';
import { installErrorHandling } from './problem.js';
import { installCompression, installCors, installRequestDecompression } from './http_features.js';
import { installObservation } from './observe.js';
import { oipRoutes } from './routes/oip.js';
import { onnxRoutes } from './routes/onnx.js';
import { playgroundRoutes } from './routes/playground.js';
import { renderRoutes } from './routes/render.js';
import { v1Routes } from './routes/v1.js';

export interface BuildOptions extends Partial<ServerConfig> {
  /** Traces requests and their phases when given (the CLI passes one when OTEL_* variables ask for traces). */
  tracer?: Tracer | undefined;
  /** Defaults to the real engine (src/index.ts). */
  engine?: Engine;
  /** A pino logger config or instance; defaults to JSON logs at `logLevel`. */
  logger?: FastifyServerOptions['logger'];
  /** How JSON bodies are parsed (defaults from the config: see src/server/body.ts). */
  bodyParsing?: Partial<BodyParsingOptions>;
}

export interface GradserveApp extends FastifyInstance {
  gradserve: {
    config: ServerConfig;
    metrics: Metrics;
    admission: MemoryAdmission;
    shuttingDown: boolean;
    /** Answers every request still in flight with 503 OVERLOADED + Retry-After (a shutdown out of time); resolves when sent. */
    answerInFlight(): Promise<number>;
  };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

let requestCounter = 0;
// Distinguishes the ids of replicas and restarts in aggregated logs.
const bootId = randomBytes(3).toString('hex');

/**
 * The `--metrics-port` listener: `/metrics` of `app` and nothing else, never behind API keys (it is meant for a port
 * the Service does not expose). Like buildApp, it does not listen.
 */
export async function buildMetricsApp(app: GradserveApp): Promise<FastifyInstance> {
  const m = Fastify({ logger: false });
  const { registry } = app.gradserve.metrics;
  m.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  return m;
}

export async function buildApp(options: BuildOptions = {}): Promise<GradserveApp> {
  const { engine: given, logger, bodyParsing, tracer, ...partial } = options;
  const config = resolveConfig(partial);
  const engine = given ?? (await import('../index.js')).engine;
  const version = packageVersion();

  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    // Request ids: honour a caller's X-Request-Id so logs can be joined across services.
    requestIdHeader: 'x-request-id',
    genReqId: () => `req-${bootId}-${(++requestCounter).toString(36)}`,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // One line per request, with route, status, sizes and engine time, from installObservation.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as GradserveApp;

  const metrics = createMetrics();
  const admission = new MemoryAdmission(config.serverMemoryBytes, config.admissionWaitMs, (used, queued) => {
    metrics.memoryReserved.set(used);
    metrics.queueDepth.set(queued);
  });
  app.decorate('gradserve', { config, metrics, admission, shuttingDown: false, answerInFlight: () => answerInFlight(app) });
  installDrain(app);
  app.addHook('preClose', async () => {
    app.gradserve.shuttingDown = true;
  });
  // Callback-style hooks on the per-request path: an async hook costs a promise and a microtask turn per request.
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    // A keep-alive connection that finishes its last request during shutdown would otherwise hold close() open.
    if (app.gradserve.shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });

  installObservation(app, tracer);
  app.setValidatorCompiler(validatorCompiler);
  // Responses are built by the handlers; a schema-driven serializer would walk every tensor element again. Large
  // b64 tensors are spliced into a Buffer instead of being copied through JSON.stringify and UTF-8 encoding.
  app.setSerializerCompiler(() => (data) => stringifyBig(data) as string);
  app.setReplySerializer((data) => stringifyBig(data) as string);
  installErrorHandling(app, config.bodyLimitBytes);
  installBodyParsing(app, {
    // One or two threads: parsing is a burst per large request, the libuv pool (`workers`) runs the kernels.
    threads: Math.max(1, Math.min(2, Math.floor(config.workers / 2))),
    maxTensorElements: config.maxTensorElements,
    maxNodes: config.maxNodes,
    timeoutMs: config.requestTimeoutMs,
    decodeBase64: kernels.decodeBase64,
    ...bodyParsing,
  });
  installRequestDecompression(app, config.bodyLimitBytes);
  // CORS before the API keys: a preflight carries no Authorization header.
  await installCors(app, config.corsOrigins);
  installAuth(app, config.apiKeys, { publicMetrics: config.publicMetrics, publicDocs: config.publicDocs });
  await installCompression(app, config.compression);
  const recycler = new BufferRecycler(config.poolBytes);
  metrics.observeRecycler(recycler);
  installMemoryTrim(app, { poolBytes: config.poolBytes, idleTrimMs: config.idleTrimMs, recycler });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gradserve',
        version,
        description: 'Derivatives as a service: outputs, gradients, VJPs, JVPs, Jacobians, HVPs and Hessians of tensor graphs. Errors are application/problem+json with a catalogue `code`.',
      },
      tags: [{ name: 'v1', description: 'Derivative API' }, { name: 'v2', description: 'Open Inference Protocol (KServe v2)' }],
      ...(config.apiKeys.length > 0 ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] } : {}),
    },
    transform: jsonSchemaTransform,
    transformObject: (d) => ('openapiObject' in d ? documentBinaryFraming(d.openapiObject) : d.swaggerObject),
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  installMetrics(app, metrics);
  const deps = { config, admission, metrics, recycler };
  // Every model is loaded and checked now: a broken one is logged by name, and the server starts all the same.
  const models = new ModelRepository(config.modelRepository, app.log);
  await models.loadAll();
  const unwatch = models.watch();
  app.addHook('onClose', async () => unwatch());
  await app.register(v1Routes, { ...deps, engine, models });
  await app.register(onnxRoutes, { config });
  await app.register(renderRoutes, { config, engine, models });
  await app.register(playgroundRoutes);
  await app.register(oipRoutes, {
    ...deps,
    engine,
    models,
    version,
    isReady: () => !app.gradserve.shuttingDown,
  });
  return app;
}
