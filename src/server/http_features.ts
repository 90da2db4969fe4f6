/**
 * HTTP features operators expect in front of the API: CORS (off unless origins are configured), negotiated response
 * compression, and compressed request bodies (Content-Encoding: gzip or deflate) whose size limit is the body limit
 * measured after decompression, so a small zip bomb is refused (413) as soon as its output passes the limit.
 */
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { GradserveError, fmtBytes } from '../errors.js';

/** Request headers a browser client sends, and response headers it may read. */
const ALLOWED_HEADERS = ['content-type', 'content-encoding', 'authorization', 'accept', 'inference-header-content-length', 'x-request-id'];
const EXPOSED_HEADERS = ['inference-header-content-length', 'x-request-id', 'retry-after', 'www-authenticate'];

/** CORS for `origins` (`*`: any origin); nothing at all when the list is empty. Register before API keys: a preflight carries none. */
export async function installCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  const any = origins.includes('*');
  await app.register(fastifyCors, {
    origin: any ? '*' : [...origins],
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    // Authorization is a header, not a cookie: no credentials mode, so `*` stays a valid answer.
    credentials: false,
    maxAge: 600,
    strictPreflight: false,
  });
}

/**
 * Response compression negotiated from Accept-Encoding (gzip or deflate, level 1: most of the saving on JSON numbers
 * for a fraction of the CPU), for JSON and problem+json answers of 1 KiB and more. Binary-framed answers
 * (application/octet-stream) are never compressed: they are written from the result arrays without a copy, and raw
 * floating-point bytes hardly compress. Request bodies are decompressed by installRequestDecompression.
 */
export async function installCompression(app: FastifyInstance, enabled: boolean): Promise<void> {
  if (!enabled) return;
  await app.register(fastifyCompress, {
    global: true,
    globalDecompression: false,
    encodings: ['gzip', 'deflate'],
    threshold: 1024,
    // JSON (problem+json included) and text only; the plugin's own default also takes octet-stream.
    customTypes: (type: string) => /^text\/|[/+]json(?:;|$)/.test(type),
    zlibOptions: { level: 1 },
  });
}

/** Counts the compressed bytes read (Fastify's `receivedEncodedLength`) and stops inflating past `limit` bytes out. */
class LimitedInflate extends Transform {
  receivedEncodedLength = 0;
  private out = 0;

  constructor(private readonly inflate: Transform, private readonly limit: number) {
    super();
    inflate.on('data', (chunk: Buffer) => {
      this.out += chunk.length;
      if (this.out > this.limit) {
        inflate.destroy();
        this.destroy(new GradserveError('TOO_LARGE', `the request body is over the limit of ${fmtBytes(this.limit)} once decompressed (GRADSERVE_BODY_LIMIT counts decompressed bytes)`));
        return;
      }
      this.push(chunk);
    });
    inflate.on('end', () => this.push(null));
    inflate.on('error', (e: Error & { code?: string }) => {
      this.destroy(new GradserveError('INVALID_JSON', `the request body is not valid ${this.encodingName} data (${e.code ?? e.message})`));
    });
  }

  encodingName = 'gzip';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.receivedEncodedLength += chunk.length;
    // Backpressure: wait for the inflater to take the chunk before reading more of the body.
    if (this.inflate.write(chunk)) done();
    else this.inflate.once('drain', () => done());
  }

  override _flush(done: TransformCallback): void {
    this.inflate.once('end', () => done());
    this.inflate.end();
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    this.inflate.destroy();
    done(err);
  }
}

/**
 * Request bodies with Content-Encoding gzip (or x-gzip) or deflate are inflated on the way to the body parser; the
 * body limit applies to the inflated bytes (and to the compressed ones, through Content-Length). Any other encoding is
 * 400 INVALID_REQUEST.
 */
export function installRequestDecompression(app: FastifyInstance, bodyLimit: number): void {
  app.addHook('preParsing', (req, _reply, payload, done) => {
    const header = req.headers['content-encoding'];
    if (header === undefined) {
      done(null, payload);
      return;
    }
    const encoding = String(header).trim().toLowerCase();
    if (encoding === '' || encoding === 'identity') {
      done(null, payload);
      return;
    }
    let inflate: Transform;
    if (encoding === 'gzip' || encoding === 'x-gzip') inflate = createGunzip();
    else if (encoding === 'deflate') inflate = createInflate();
    else {
      done(new GradserveError('INVALID_REQUEST', `Content-Encoding "${encoding}" is not supported; send the body as is, or with gzip or deflate`));
      return;
    }
    const limited = new LimitedInflate(inflate, bodyLimit);
    limited.encodingName = encoding === 'deflate' ? 'deflate' : 'gzip';
    (payload as Readable).on('error', (e) => limited.destroy(e));
    (payload as Readable).pipe(limited);
    done(null, limited);
  });
}
