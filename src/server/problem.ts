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

/**
 * True for requests under /v2, which speak the Open Inference Protocol error shape: every route there, unknown ones
 * and 401s included (the raw URL, since unknown routes and auth failures have no matched route).
 */
function isOipRequest(req: FastifyRequest): boolean {
  const path = req.url.split('?')[0]!;
  return path === '/v2' || path.startsWith('/v2/');
}

/**
 * The status on the OIP surface: a request the model cannot run (missing input, wrong shape or datatype, unknown
 * output; 422 on v1) is 400 there, as in KServe and Triton. Size, auth, overload and deadline statuses are kept.
 */
export function oipStatus(status: number): number {
  return status === 422 ? 400 : status;
}

export function sendError(req: FastifyRequest, reply: FastifyReply, e: GradserveError): FastifyReply {
  if (e.headers !== undefined) reply.headers(e.headers);
  if (isOipRequest(req)) {
    return reply.code(oipStatus(e.status)).type('application/json; charset=utf-8').send({ error: e.detail });
  }
  return reply.code(e.status).type('application/problem+json; charset=utf-8').send(problemOf(e));
}

/**
 * Fastify answers a body over the limit at once and closes the connection. A client that writes its whole body
 * before reading (Python's urllib) then gets a broken pipe instead of the 413. When the declared Content-Length is
 * at most twice the limit, the connection is kept: Node discards the rest of the body (bounded by that length and by
 * the server's request timeout) and the client reads the 413. Larger or chunked bodies are still cut off.
 */
function lingerOnTooLarge(err: unknown, req: FastifyRequest, reply: FastifyReply, bodyLimit: number): void {
  if ((err as Partial<FastifyError> | undefined)?.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') return;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared <= 2 * bodyLimit) reply.removeHeader('connection');
}

export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err, req, reply) => {
    lingerOnTooLarge(err, req, reply, bodyLimit);
    const e = toGradserveError(err, bodyLimit);
    if (e.code === 'INTERNAL') req.log.error({ err, reqId: req.id }, 'unhandled error');
    else req.log.info({ code: e.code, status: e.status }, e.detail);
    return sendError(req, reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    return sendError(req, reply, new GradserveError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
}
