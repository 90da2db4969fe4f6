/**
 * What is recorded about each request: one log line when it completes (route, status, bytes in and out, total and
 * engine time; health probes are not logged), and, when a tracer is given (OpenTelemetry, configured by the standard
 * OTEL_* variables, see src/server/telemetry.ts), a server span per request with a child span per phase: parse (the
 * body), plan (validation, transforms, shape inference and cost estimate, up to admission), run (the kernels), encode
 * (writing the answer). An incoming W3C `traceparent` is honoured.
 */
import { performance } from 'node:perf_hooks';
import { type Context, type Span, SpanKind, SpanStatusCode, type Tracer, ROOT_CONTEXT, propagation, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Probes that run every few seconds per replica: neither logged nor traced. */
const QUIET = new Set(['/v2/health/live', '/v2/health/ready']);

export type Phase = 'parse' | 'plan' | 'run' | 'encode';

interface Observation {
  start: number;
  /** Wall time spent in engine calls (validation to last kernel), in ms. */
  engineMs: number;
  /** Body bytes as received (compressed ones when the body was), when counted by the body reader. */
  bytesIn?: number;
  /** Socket bytes written before this request's answer (for streamed answers, which have no Content-Length). */
  written?: number;
  tracer?: Tracer;
  span?: Span;
  ctx?: Context;
  phase?: { name: Phase; span: Span };
}

const observations = new WeakMap<FastifyRequest, Observation>();

function observation(req: FastifyRequest): Observation | undefined {
  return observations.get(req);
}

/** Adds engine time to the request's record (src/server/run.ts). */
export function addEngineTime(req: FastifyRequest, ms: number): void {
  const o = observation(req);
  if (o !== undefined) o.engineMs += ms;
}

/** The body's size on the wire, from the body reader (requests without Content-Length, compressed bodies). */
export function setBytesIn(req: FastifyRequest, bytes: number): void {
  const o = observation(req);
  if (o !== undefined) o.bytesIn = bytes;
}

/** Ends the phase under way (if any) and starts `name` (none: just end it). No-op without a tracer. */
export function phase(req: FastifyRequest, name: Phase | undefined): void {
  const o = observation(req);
  if (o?.ctx === undefined || o.tracer === undefined) return;
  o.phase?.span.end();
  o.phase = undefined;
  if (name === undefined) return;
  o.phase = { name, span: o.tracer.startSpan(`gradserve.${name}`, { kind: SpanKind.INTERNAL }, o.ctx) };
}

function routeOf(req: FastifyRequest): string {
  return req.routeOptions?.url ?? 'unmatched';
}

/** The answer's body bytes (Content-Length), or for a streamed answer the bytes its socket took, headers included. */
function bytesOut(reply: FastifyReply, o: Observation): number | undefined {
  const n = Number(reply.getHeader('content-length'));
  if (Number.isFinite(n)) return n;
  const now = reply.raw.socket?.bytesWritten;
  return typeof now === 'number' && o.written !== undefined ? now - o.written : undefined;
}

/**
 * Installs the request log and, with `tracer`, tracing. Replaces Fastify's own two lines per request (set
 * `disableRequestLogging`).
 */
export function installObservation(app: FastifyInstance, tracer: Tracer | undefined): void {
  app.addHook('onRequest', (req, reply, done) => {
    const path = req.url.split('?', 1)[0]!;
    if (QUIET.has(path)) {
      done();
      return;
    }
    const written = reply.raw.socket?.bytesWritten;
    const o: Observation = { start: performance.now(), engineMs: 0, ...(typeof written === 'number' ? { written } : {}) };
    observations.set(req, o);
    if (tracer !== undefined) {
      o.tracer = tracer;
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      const route = routeOf(req);
      o.span = tracer.startSpan(`${req.method} ${route}`, {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': req.method, 'url.path': path, 'http.route': route, 'gradserve.request_id': req.id },
      }, parent);
      o.ctx = trace.setSpan(parent, o.span);
    }
    done();
  });
  app.addHook('preParsing', (req, _reply, payload, done) => {
    phase(req, 'parse');
    done(null, payload);
  });
  app.addHook('preValidation', (req, _reply, done) => {
    if (observation(req)?.phase?.name === 'parse') phase(req, undefined);
    done();
  });
  app.addHook('onSend', (req, _reply, payload, done) => {
    phase(req, undefined);
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const o = observation(req);
    if (o === undefined) {
      done();
      return;
    }
    observations.delete(req);
    const declared = Number(req.headers['content-length']);
    const ms = performance.now() - o.start;
    const line = {
      method: req.method,
      route: routeOf(req),
      url: req.url.length > 200 ? `${req.url.slice(0, 200)}...` : req.url,
      status: reply.statusCode,
      bytesIn: o.bytesIn ?? (Number.isFinite(declared) ? declared : 0),
      bytesOut: bytesOut(reply, o),
      ms: Math.round(ms * 10) / 10,
      engineMs: Math.round(o.engineMs * 10) / 10,
    };
    req.log.info(line, 'request completed');
    if (o.span !== undefined) {
      o.phase?.span.end();
      o.span.setAttributes({
        'http.response.status_code': reply.statusCode,
        'http.request.body.size': line.bytesIn,
        ...(line.bytesOut === undefined ? {} : { 'http.response.body.size': line.bytesOut }),
        'gradserve.engine_ms': line.engineMs,
      });
      if (reply.statusCode >= 500) o.span.setStatus({ code: SpanStatusCode.ERROR });
      o.span.end();
    }
    done();
  });
}
