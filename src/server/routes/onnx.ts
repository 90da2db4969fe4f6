/**
 * POST /v1/import/onnx (API.md "Models by reference and imported models"): the raw bytes of an .onnx file in, the
 * translated graph and its parameters out, so that a user can see and keep what a repository model would serve.
 * Registered as its own plugin: its body is bytes, not JSON, so it has its own content-type parsers.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GradserveError } from '../../errors.js';
import { importOnnx } from '../../onnx/import.js';
import { encodeTensor } from '../../tensor/wire.js';
import { BINARY_HEADER } from '../body.js';
import { FrameBuilder, sendFrame } from '../framing.js';
import type { ServerConfig } from '../config.js';
import { Graph, ProblemResponse } from '../schemas.js';

const Query = z.object({
  weights: z.enum(['none', 'b64', 'binary']).default('none').describe('none: shapes and datatypes only; b64: each parameter also carries its values as b64; binary: a framed answer, each parameter with binary_data_offset and binary_data_size'),
  dims: z.string().optional().describe('sizes for symbolic dimensions, `name:size,...` (e.g. `batch:8`)'),
});

const ImportResponse = z.object({
  graph: Graph,
  parameters: z.record(z.string(), z.object({ shape: z.array(z.int()), datatype: z.string() }).passthrough()),
  notes: z.array(z.string()).optional(),
});

function parseDims(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === undefined || text === '') return out;
  for (const part of text.split(',')) {
    const m = /^\s*([^:\s]+)\s*:\s*(\d+)\s*$/.exec(part);
    if (m === null) {
      const message = `"${part}" is not name:size (e.g. batch:8)`;
      throw new GradserveError('INVALID_REQUEST', `dims: ${message}`, { errors: [{ path: 'dims', message }] });
    }
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ProblemResponse } } });

export async function onnxRoutes(app: FastifyInstance, opts: { config: ServerConfig }): Promise<void> {
  // This plugin's own parsers: the body is the file's bytes, whatever the content type says (checked in the handler).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.config.bodyLimitBytes }, (_req, body, done) => done(null, body));
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/import/onnx', {
    schema: {
      summary: 'Import an ONNX model: the translated graph and its parameters',
      description: 'The body is the raw .onnx file, as `application/onnx` or `application/octet-stream` (without Inference-Header-Content-Length).',
      tags: ['v1'],
      querystring: Query,
      response: {
        200: ImportResponse,
        400: problem('INVALID_MODEL: the bytes are not an ONNX model gradserve can read (empty, truncated, not protobuf, external data); INVALID_REQUEST'),
        413: problem('TOO_LARGE: the body is over the limit'),
        422: problem('UNSUPPORTED_MODEL: ops or attributes gradserve cannot express, every such node listed in errors'),
      },
    },
  }, async (req, reply) => {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/onnx' && type !== 'application/octet-stream') {
      const message = `Content-Type ${type === '' ? '(none)' : type}: send the .onnx file's bytes as application/onnx or application/octet-stream`;
      throw new GradserveError('INVALID_REQUEST', message, { errors: [{ path: 'Content-Type', message }] });
    }
    if (req.headers[BINARY_HEADER] !== undefined) {
      const message = 'the body is a whole .onnx file, not a binary-framed JSON request: leave out Inference-Header-Content-Length';
      throw new GradserveError('INVALID_REQUEST', message, { errors: [{ path: 'Inference-Header-Content-Length', message }] });
    }
    const body = req.body as Buffer | undefined;
    const { graph, parameters, notes } = importOnnx(body ?? Buffer.alloc(0), { dims: parseDims(req.query.dims) });
    const frame = req.query.weights === 'binary' ? new FrameBuilder() : undefined;
    const params: Record<string, { shape: number[]; datatype: string }> = {};
    for (const [name, t] of Object.entries(parameters)) {
      if (frame !== undefined) params[name] = frame.tensor(t);
      else if (req.query.weights === 'b64') params[name] = encodeTensor(t, 'b64');
      else params[name] = { shape: [...t.shape], datatype: t.dtype };
    }
    const answer = { graph, parameters: params, ...(notes.length > 0 ? { notes } : {}) };
    return frame !== undefined ? sendFrame(reply, answer, frame) : answer;
  });
}
