/**
 * Rendering of errors: application/problem+json (RFC 9457) for the v1 API, `{"error": "..."}` for the Open Inference
 * Protocol routes. Fastify's own errors (body parsing, size limits, validation) are mapped onto the one catalogue in
 * src/errors.ts, so every failure a client can see carries a catalogue `code`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CATALOGUE, GradserveError, fmtBytes, isGradserveError } from '../errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
}

export function problemOf(e: GradserveError): Problem {
  const p: Problem = {
    type: `https://gradserve.dev/errors/${e.code}`,
    title: ERROR_CATALOGUE[e.code].title,
    status: e.status,
    detail: e.detail,
    code: e.code,
  };
  if (e.errors !== undefined && e.errors.length > 0) p.errors = e.errors;
  return p;
}

/** Maps anything thrown inside a request to a catalogue error; unknown errors become INTERNAL. */
export function toGradserveError(err: unknown, bodyLimit: number): GradserveError {
  if (isGradserveError(err)) return err;
  const fe = err as Partial<FastifyError> & { type?: string };
  switch (fe?.code) {
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GradserveError('INVALID_JSON', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GradserveError('INVALID_JSON', `the request body is not valid JSON: ${fe.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GradserveError('TOO_LARGE', `the request body is over the limit of ${fmtBytes(bodyLimit)} (GRADSERVE_BODY_LIMIT)`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GradserveError('INVALID_JSON', 'the request body length does not match its Content-Length');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GradserveError('INVALID_REQUEST', `unsupported Content-Type; send application/json`);
    default:
      break;
  }
  if (fe?.type === 'entity.too.large') {
    return new GradserveError('TOO_LARGE', `the request body is over the limit of ${fmtBytes(bodyLimit)}`);
  }
  if (err instanceof SyntaxError) return new GradserveError('INVALID_JSON', `the request body is not valid JSON: ${err.message}`);
  return new GradserveError('INTERNAL', 'internal error; see the server log for this request id', { cause: err });
}

/** True for routes that speak the Open Inference Protocol error shape. */
function isOipRoute(req: FastifyRequest): boolean {
  const url = req.routeOptions?.url ?? '';
  return url.startsWith('/v2/models');
}

export function sendError(req: FastifyRequest, reply: FastifyReply, e: GradserveError): FastifyReply {
  if (e.headers !== undefined) reply.headers(e.headers);
  reply.code(e.status);
  if (isOipRoute(req) && e.code !== 'UNAUTHORIZED') {
    return reply.type('application/json; charset=utf-8').send({ error: e.detail });
  }
  return reply.type('application/problem+json; charset=utf-8').send(problemOf(e));
}

export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err, req, reply) => {
    const e = toGradserveError(err, bodyLimit);
    if (e.code === 'INTERNAL') req.log.error({ err, reqId: req.id }, 'unhandled error');
    else req.log.info({ code: e.code, status: e.status }, e.detail);
    return sendError(req, reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new GradserveError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    return reply.code(404).type('application/problem+json; charset=utf-8').send(problemOf(e));
  });
}
