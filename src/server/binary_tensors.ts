/**
 * The binary tensors of a framed /v1 request (API.md "Binary framing"): any tensor in `inputs`, `cotangents`,
 * `tangents`, `vectors` or `graph.constants` may be `{shape, datatype, binary_data_size, binary_data_offset?}`, its
 * bytes in the binary section after the JSON header.
 *
 * Request tensors become views of the request body when their offset suits the element type (else one copy), and are
 * bound to their wire objects so that the usual decoding (src/server/tensors.ts) hands them over unchanged. Graph
 * constants are copied once into arrays of their own, because a compiled graph may be cached with them and must not
 * pin the request body; their wire objects become `{shape, datatype, b64}` so the engine's graph hash (which is over
 * the wire text) still tells different weights apart, and decoding hands back the copied array.
 */
import type { preValidationHookHandler } from 'fastify';
import { GradserveError } from '../errors.js';
import { binaryTensorSpec, bindDecoded, tensorFromBytes } from '../tensor/wire.js';
import { type BlobRef, layoutBlobs } from './framing.js';
import { checkElements } from './tensors.js';

/** Top-level request fields that map value names to tensors. */
const TENSOR_MAPS = ['inputs', 'cotangents', 'tangents', 'vectors'] as const;

type Path = (string | number)[];

interface Found {
  path: [string, string] | ['graph', 'constants', string];
  holder: Record<string, unknown>;
  name: string;
  wire: Record<string, unknown>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
const pathText = (p: readonly (string | number)[]): string => p.join('.');

function findBinaryTensors(body: Record<string, unknown>): Found[] {
  const found: Found[] = [];
  const scan = (holder: unknown, path: (name: string) => Found['path']) => {
    if (!isPlainObject(holder)) return;
    for (const name of Object.keys(holder)) {
      const w = holder[name];
      if (isPlainObject(w) && has(w, 'binary_data_size')) found.push({ path: path(name), holder, name, wire: w });
    }
  };
  for (const field of TENSOR_MAPS) scan(body[field], (name) => [field, name]);
  if (isPlainObject(body.graph)) scan(body.graph.constants, (name) => ['graph', 'constants', name]);
  return found;
}

/** True for the paths (in the JSON text) where a binary tensor object may sit. */
function isTensorPath(p: Path): boolean {
  if (p.length === 2) return typeof p[0] === 'string' && (TENSOR_MAPS as readonly string[]).includes(p[0]) && typeof p[1] === 'string';
  return p.length === 3 && p[0] === 'graph' && p[1] === 'constants' && typeof p[2] === 'string';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The paths of the tensor objects with a `binary_data_size` key, in the order they appear in `text` (valid JSON, as
 * JSON.parse has already accepted it). The parsed value cannot say: JSON.parse puts integer-like keys ("0", "7")
 * first, and a duplicate key keeps its first position but its last value.
 */
export function binaryTensorsInTextOrder(text: Buffer): Path[] {
  const out: Path[] = [];
  // For each open container: the key (object) or index (array) of the current member.
  const path: Path = [];
  const isArray: boolean[] = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text[i]!;
    if (c === QUOTE) {
      let end = i + 1;
      for (;;) {
        end = text.indexOf(QUOTE, end);
        let bs = 0;
        for (let k = end - 1; text[k] === BACKSLASH; k--) bs++;
        if (bs % 2 === 0) break;
        end++;
      }
      if (expectKey) {
        const raw = text.subarray(i + 1, end);
        const key = raw.indexOf(BACKSLASH) < 0 ? raw.toString('utf8') : (JSON.parse(text.toString('utf8', i, end + 1)) as string);
        path[path.length - 1] = key;
        expectKey = false;
        if (key === 'binary_data_size') {
          const holder = path.slice(0, -1);
          if (isTensorPath(holder)) out.push(holder);
        }
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      path.push('');
      isArray.push(false);
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      path.push(0);
      isArray.push(true);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      path.pop();
      isArray.pop();
    } else if (c === 0x2c /* , */) {
      if (isArray[isArray.length - 1]) (path[path.length - 1] as number)++;
      else expectKey = true;
    }
    i++;
  }
  return out;
}

/** Puts `found` in the order of the JSON text, refusing a binary tensor named twice (a duplicate key). */
function inTextOrder(found: Found[], header: Buffer): Found[] {
  const byPath = new Map(found.map((f) => [JSON.stringify(f.path), f]));
  const ordered: Found[] = [];
  const seen = new Set<string>();
  for (const p of binaryTensorsInTextOrder(header)) {
    const key = JSON.stringify(p);
    const f = byPath.get(key);
    if (f === undefined || seen.has(key)) {
      const where = pathText(p);
      throw new GradserveError('INVALID_TENSOR', `${where}: the JSON header gives this binary tensor more than once (a duplicate key), so the order of the blobs is ambiguous`, { errors: [{ path: where, message: 'given more than once' }] });
    }
    seen.add(key);
    ordered.push(f);
  }
  return ordered;
}

/**
 * Resolves the binary tensors of a parsed /v1 body against its binary section (null: the body was not framed).
 * `header` is the JSON text the body was parsed from. Mutates `body`: see the module comment.
 */
export function resolveBinaryTensors(body: unknown, section: Buffer | null, header: Buffer | null, maxElements: number): void {
  if (!isPlainObject(body)) {
    if (section !== null && section.length > 0) layoutBlobs([], section.length);
    return;
  }
  let found = findBinaryTensors(body);
  if (section === null) {
    if (found.length === 0) return;
    const where = pathText(found[0]!.path);
    const message = 'binary_data_size needs a binary-framed body: Content-Type application/octet-stream with an Inference-Header-Content-Length header giving the length of the JSON part';
    throw new GradserveError('INVALID_TENSOR', `${where}: ${message}`, { errors: [{ path: `${where}.binary_data_size`, message }] });
  }
  const implicit = found.filter((f) => f.wire.binary_data_offset === undefined).length;
  if (found.length > 1 && implicit > 0 && header !== null) found = inTextOrder(found, header);

  const refs: BlobRef[] = found.map((f) => {
    const where = pathText(f.path);
    for (const other of ['data', 'b64'] as const) {
      if (f.wire[other] !== undefined) {
        const message = `give one of data, b64 or binary_data_size, not both ${other} and binary_data_size`;
        throw new GradserveError('INVALID_TENSOR', `${where}: ${message}`, { errors: [{ path: `${where}.${other}`, message }] });
      }
    }
    return { label: where, sizePath: `${where}.binary_data_size`, offsetPath: `${where}.binary_data_offset`, size: f.wire.binary_data_size, offset: f.wire.binary_data_offset };
  });
  // Shapes and datatypes first: a size that disagrees with them is reported as such, not as a layout problem.
  found.forEach((f, k) => {
    const where = pathText(f.path);
    checkElements(f.wire, where, maxElements);
    const spec = binaryTensorSpec(f.wire.shape, f.wire.datatype, where);
    if (typeof refs[k]!.size === 'number' && refs[k]!.size !== spec.bytes) {
      const message = `binary_data_size is ${String(refs[k]!.size)} but shape [${spec.shape.join(', ')}] of ${spec.dtype} needs ${spec.bytes} bytes`;
      throw new GradserveError('INVALID_TENSOR', `${where}: ${message}`, { errors: [{ path: `${where}.binary_data_size`, message }] });
    }
  });
  const spans = layoutBlobs(refs, section.length);

  found.forEach((f, k) => {
    const where = pathText(f.path);
    const { start, end } = spans[k]!;
    const isConstant = f.path[0] === 'graph';
    const t = tensorFromBytes(section.subarray(start, end), f.wire.shape, f.wire.datatype, where, { view: !isConstant, sizeField: 'binary_data_size' });
    if (!isConstant) {
      bindDecoded(f.wire, t);
      return;
    }
    const d = t.data;
    const wire = { shape: [...t.shape], datatype: t.dtype, b64: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') };
    bindDecoded(wire, t);
    f.holder[f.name] = wire;
  });
}

/**
 * A preValidation hook for routes that take /v1 bodies: the tensors a framed body carries in its binary section are
 * bound to their JSON objects before the schema check, so every endpoint decodes them like any other tensor.
 */
export function bindBinaryTensors(maxElements: number): preValidationHookHandler {
  return (req, _reply, done) => {
    try {
      resolveBinaryTensors(req.body, req.binaryPayload, req.binaryHeader, maxElements);
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  };
}
