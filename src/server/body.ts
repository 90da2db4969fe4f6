/**
 * Body parsing and schema validation.
 *
 * JSON: `JSON.parse` (bodies over 1 MiB go through bigjson.ts, which cuts the large `b64` strings out of the bytes
 * first), then a prototype-poisoning check only when the body mentions `__proto__` or `prototype` (a
 * substring search runs at memory speed; the regex scans of Fastify's default parser cost 10-40% on large bodies).
 * A byte-level parser of numeric arrays written in JS was measured and lost to V8's JSON.parse, so large tensors are
 * best sent as `b64` (bench/http/json-parse.mjs has the figures).
 * Bodies are read into blocks (body_stream.ts); JSON bodies from OFF_THREAD_BYTES up are parsed on worker threads
 * (parse_pool.ts) with the same code and the same results and errors, so no request holds the event loop (bodies
 * that are mostly b64 tensors excepted, up to INLINE_B64_MAX_BYTES: their base64 is decoded natively here), and
 * bodies that cannot be represented are refused before they are built (json_prescan.ts).
 * Every content type is read as JSON so that `curl -d @body.json` (form content type) just works; the Triton binary
 * tensor extension (`Inference-Header-Content-Length`) splits the body into a JSON header and raw tensor bytes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { GradserveError } from '../errors.js';
import type { Readable } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import type { ResourceLimits } from 'node:worker_threads';
import { b64Ranges, BIG_BODY_BYTES, parseBigJsonText } from './bigjson.js';
import { readBody, type BodyBytes } from './body_stream.js';
import { leaseOf } from './recycle.js';
import { prescanJson, type PrescanLimits } from './json_prescan.js';
import type { B64Decoder, InlineB64 } from './json_tensors.js';
import { ParsePool } from './parse_pool.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Raw tensor bytes after the JSON header (binary framing, the Triton binary tensor data extension), else null. */
    binaryPayload: Buffer | null;
    /** The JSON header of a framed body (its first Inference-Header-Content-Length bytes), else null. */
    binaryHeader: Buffer | null;
  }
}

export const BINARY_HEADER = 'inference-header-content-length';

/**
 * Parses a JSON body (a string or its UTF-8 bytes); every failure is INVALID_JSON. Bytes from BIG_BODY_BYTES up are
 * first checked by json_prescan.ts with `limits` (413 for what cannot be represented); `false` when the caller did.
 */
export function parseJsonText(body: string | Buffer, limits: Partial<PrescanLimits> | false = {}, inline?: InlineB64): unknown {
  const buf = typeof body === 'string' ? undefined : body;
  const empty = buf !== undefined ? isBlank(buf) : (body as string).trim().length === 0;
  if (empty) throw new GradserveError('INVALID_JSON', 'the request body is empty; send a JSON object');
  if (buf !== undefined && buf.length >= BIG_BODY_BYTES && limits !== false) {
    const heap = getHeapStatistics();
    prescanJson(buf, { maxTensorElements: 2 ** 28, heapBudget: heap.heap_size_limit / 2 - heap.used_heap_size, tooDeep: depthErrorAt, ...limits });
  }
  let value: unknown;
  // The text JSON.parse saw: for big bodies without their base64 strings, which hold no keys.
  let text: string;
  try {
    if (buf === undefined) text = body as string;
    else if (buf.length >= BIG_BODY_BYTES) ({ value, text } = parseBigJsonText(buf, inline));
    else text = buf.toString('utf8');
    if (buf === undefined || buf.length < BIG_BODY_BYTES) value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const nonFinite = /\b(NaN|Infinity)\b/.test(msg) || /Unexpected token '?[NI]/.test(msg);
    const hint = nonFinite ? ' (non-finite numbers must be the strings "NaN", "Infinity", "-Infinity")' : '';
    throw new GradserveError('INVALID_JSON', `the request body is not valid JSON: ${msg}${hint}`);
  }
  // A key spelled with escapes (\u005f_proto__) is not visible as a substring, so any escape also runs the check.
  if (text!.includes('__proto__') || text!.includes('prototype') || text!.includes('\\u')) checkPoison(value);
  checkDepth(value);
  return value;
}

/** Far deeper than any tensor (rank <= 64) inside a request; recursive code downstream must never see worse. */
export const MAX_JSON_DEPTH = 128;

function checkDepth(root: unknown): void {
  const stack: unknown[] = [root];
  const depth: number[] = [1];
  while (stack.length > 0) {
    const v = stack.pop();
    const d = depth.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > MAX_JSON_DEPTH) throw depthError(root);
    if (Array.isArray(v)) {
      // Every element is looked at (a typeof per number is cheap), so [1, {deep}] cannot slip through.
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x === 'object' && x !== null) { stack.push(x); depth.push(d + 1); }
      }
      continue;
    }
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'object' && x !== null) { stack.push(x); depth.push(d + 1); }
    }
  }
}

/** Tensors have at most this many dimensions (src/tensor/wire.ts). */
const MAX_TENSOR_RANK = 64;
/** Top-level request fields whose values are tensors (v1 maps, and the OIP `inputs` list). */
const TENSOR_FIELDS = new Set(['inputs', 'cotangents', 'tangents', 'vectors']);

/**
 * The error for an over-deep request, found again with paths (only on this failure path). A long run of nested arrays
 * is tensor data (`inputs.x.data`, or a shorthand `inputs.x`), so it is the tensor's error and names it.
 */
function depthError(root: unknown): GradserveError {
  const stack: { v: unknown; path: PropertyKey[] }[] = [{ v: root, path: [] }];
  let found: PropertyKey[] = [];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (path.length >= MAX_JSON_DEPTH) { found = path; break; }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) if (typeof v[i] === 'object' && v[i] !== null) stack.push({ v: v[i], path: [...path, i] });
      continue;
    }
    for (const k in v) stack.push({ v: (v as Record<string, unknown>)[k], path: [...path, k] });
  }
  return depthErrorAt(found);
}

/** The over-deep error for the path of a value nested MAX_JSON_DEPTH levels deep. */
export function depthErrorAt(found: readonly PropertyKey[]): GradserveError {
  let start = found.length;
  while (start > 0 && typeof found[start - 1] === 'number') start--;
  const inTensor = TENSOR_FIELDS.has(String(found[0])) || (found[0] === 'graph' && found[1] === 'constants');
  if (inTensor && found.length - start > MAX_TENSOR_RANK && start > 1) {
    const where = formatPath(found.slice(0, start));
    const message = `nesting is deeper than ${MAX_TENSOR_RANK} dimensions`;
    return new GradserveError('INVALID_TENSOR', `${where}: ${message}`, { errors: [{ path: where, message }] });
  }
  const where = formatPath(found) || '(body)';
  const message = `the request is nested deeper than ${MAX_JSON_DEPTH} levels`;
  return new GradserveError('INVALID_REQUEST', message, { errors: [{ path: where, message }] });
}

function isBlank(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/** Rejects `__proto__` keys and `constructor.prototype`, as Fastify's default parser does. */
function checkPoison(root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) stack.push(x);
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(v, '__proto__')) {
      throw new GradserveError('INVALID_JSON', 'the request body has a forbidden "__proto__" key');
    }
    const ctor = (v as Record<string, unknown>)['constructor'];
    if (Object.prototype.hasOwnProperty.call(v, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) {
      throw new GradserveError('INVALID_JSON', 'the request body has a forbidden "constructor.prototype" key');
    }
    for (const k in v) stack.push((v as Record<string, unknown>)[k]);
  }
}

/**
 * Binary framing (API.md "Binary framing"): the first Inference-Header-Content-Length bytes are the JSON body, the
 * rest is the binary section. Both stay views of the one body buffer, so tensors can be viewed in place.
 */
function parseFramedBody(req: FastifyRequest, buf: Buffer, header: string | string[]): unknown {
  const text = String(header).trim();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > buf.length) {
    const message = Number.isSafeInteger(n)
      ? `Inference-Header-Content-Length is ${n} but the body has only ${buf.length} bytes; it gives the length of the JSON part that starts the body`
      : `Inference-Header-Content-Length ${JSON.stringify(String(header))} is not a byte count (a non-negative integer)`;
    throw new GradserveError('INVALID_REQUEST', message, { errors: [{ path: 'Inference-Header-Content-Length', message }] });
  }
  req.binaryHeader = buf.subarray(0, n);
  req.binaryPayload = buf.subarray(n);
  return parseJsonText(req.binaryHeader);
}

function parseBody(req: FastifyRequest, buf: Buffer, decode: B64Decoder | undefined): unknown {
  const header = req.headers[BINARY_HEADER];
  if (header !== undefined) return parseFramedBody(req, buf, header);
  try {
    // Large b64 tensors are decoded into buffers recycled for the request when its route leases them.
    const lease = leaseOf(req);
    return parseJsonText(buf, {}, decode === undefined ? undefined : { decode, alloc: lease === undefined ? undefined : (n) => lease.alloc(n) });
  } catch (e) {
    // A framed body without its header length is raw bytes followed by JSON: say what is missing.
    if ((e as GradserveError).code === 'INVALID_JSON' && req.headers['content-type']?.startsWith('application/octet-stream') && buf.length > 0) {
      throw new GradserveError('INVALID_JSON', `${(e as GradserveError).detail}; a binary-framed body (application/octet-stream) needs the Inference-Header-Content-Length header giving the length of its JSON part`);
    }
    throw e;
  }
}

/** parseBody's hint for an unframed octet-stream body that is not JSON, for bodies parsed off the event loop. */
function framingHint(req: FastifyRequest, e: Error): Error {
  if ((e as GradserveError).code === 'INVALID_JSON' && req.headers['content-type']?.startsWith('application/octet-stream')) {
    return new GradserveError('INVALID_JSON', `${(e as GradserveError).detail}; a binary-framed body (application/octet-stream) needs the Inference-Header-Content-Length header giving the length of its JSON part`);
  }
  return e;
}

/** How installBodyParsing reads JSON: inline, or on worker threads from a size up (src/server/parse_pool.ts). */
export interface BodyParsingOptions {
  /** JSON bodies at least this large are parsed off the event loop. */
  offThreadBytes: number;
  /** Parse worker threads; 0 parses every body inline. */
  threads: number;
  /** GRADSERVE_MAX_TENSOR_ELEMENTS: no JSON array in a tensor field may be longer (checked before parsing). */
  maxTensorElements: number;
  /** GRADSERVE_MAX_NODES: bounds the values outside tensors (checked before parsing). */
  maxNodes: number;
  /** A parse running longer is stopped (504). */
  timeoutMs: number;
  resourceLimits?: ResourceLimits | undefined;
  /**
   * The native base64 decoder: large `b64` tensors of bodies parsed on the event loop are decoded from the body bytes
   * without building their strings (without it, Buffer decodes the strings).
   */
  decodeBase64?: B64Decoder | undefined;
}

/** JSON.parse takes ~5 ms on this much JSON of numbers: larger bodies leave the event loop. */
export const OFF_THREAD_BYTES = 256 * 1024;

/** The largest body mostlyB64 looks at: cutting out and decoding its base64 costs ~1 ms a MiB on the event loop. */
export const INLINE_B64_MAX_BYTES = 4 << 20;

/**
 * Whether a body up to INLINE_B64_MAX_BYTES is base64 tensors with less than `rest` bytes of other JSON: such a body
 * is parsed on the event loop. Handing it to a parse worker costs more than it saves (the body is copied to the
 * worker and its decoded tensors back, and those fresh buffers, ~3x the body per request, are what drove the
 * collector under a b64 load: 13 full collections a second on the MLP request, 2.7 inline).
 */
function mostlyB64(body: BodyBytes, rest: number): boolean {
  if (body.length > INLINE_B64_MAX_BYTES || body.blocks.length !== 1) return false;
  const b = body.blocks[0]!;
  let other = body.length;
  for (const [s, e] of b64Ranges(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) other -= e - s;
  return other < rest;
}

export function installBodyParsing(app: FastifyInstance, options: Partial<BodyParsingOptions> = {}): void {
  app.decorateRequest('binaryPayload', null);
  app.decorateRequest('binaryHeader', null);
  app.removeAllContentTypeParsers();
  const offThreadBytes = options.offThreadBytes ?? OFF_THREAD_BYTES;
  const threads = options.threads ?? 1;
  let pool: ParsePool | undefined;
  app.addHook('onClose', async () => {
    await pool?.close();
  });
  const parser = (req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void): void => {
    // Route matching wins over the body: an unknown route is 404 whatever its body looks like.
    const keep = !req.is404;
    // A framed body is kept as one buffer (its tensors are views of it), recycled when the route leases buffers.
    const framed = req.headers[BINARY_HEADER] !== undefined;
    const lease = leaseOf(req);
    const whole = !framed ? undefined : lease !== undefined ? (n: number) => lease.alloc(n) : () => undefined;
    readBody(req, payload, req.routeOptions.bodyLimit, keep, (err, body) => {
      if (err !== null || body === undefined || !keep) {
        done(err, undefined);
        return;
      }
      if (threads > 0 && body.length >= offThreadBytes && req.headers[BINARY_HEADER] === undefined && !mostlyB64(body, offThreadBytes)) {
        pool ??= new ParsePool({
          threads,
          maxTensorElements: options.maxTensorElements ?? 2 ** 28,
          maxNodes: options.maxNodes,
          timeoutMs: options.timeoutMs ?? 60_000,
          resourceLimits: options.resourceLimits,
        });
        pool.parse(body.blocks, body.length, () => req.socket?.destroyed === true).then(
          (value) => done(null, value),
          (e: Error) => done(framingHint(req, e)),
        );
        return;
      }
      try {
        done(null, parseBody(req, body.buffer(), options.decodeBase64));
      } catch (e) {
        done(e as Error);
      }
    }, whole);
  };
  app.addContentTypeParser('application/json', parser);
  app.addContentTypeParser('*', parser);
  // A POST without a body (and so without a content type) never reaches a parser: it is still "empty".
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.method === 'POST' && req.body === undefined && !req.is404) {
      done(new GradserveError('INVALID_JSON', 'the request body is empty; send a JSON object'));
      return;
    }
    done();
  });
}

/** `["graph", "nodes", 2, "inputs", 1]` -> `graph.nodes[2].inputs[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** Zod validation whose failures are INVALID_REQUEST problems with paths into the body. */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema }) => (data: unknown) => {
  const r = schema.safeParse(data);
  if (r.success) return { value: r.data };
  const errors = r.error.issues.map((i) => ({ path: formatPath(i.path) || '(body)', message: i.message }));
  const shown = errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; ');
  const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
  return { error: new GradserveError('INVALID_REQUEST', `${shown}${more}`, { errors }) };
};
