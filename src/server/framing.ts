/**
 * Binary framing (API.md "Binary framing"), shared by /v1 and the Open Inference Protocol routes: a JSON header of
 * `Inference-Header-Content-Length` bytes, then a binary section holding raw little-endian tensor bytes.
 *
 * In: `layoutBlobs` places every binary tensor of a request in the binary section (explicit `binary_data_offset`, or
 * right after the previous one) and refuses sizes that are not byte counts, blobs that run past the end or overlap,
 * and bytes no tensor claims. Out: `FrameBuilder` lays result tensors out (aligned, zero padding between) as views of
 * their own typed arrays, and `sendFrame` writes the header, the padding and those views to the socket: the bytes of a
 * result are never copied into a response buffer, and never base64-encoded.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { GradserveError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/** Blobs of /v1 responses start at multiples of this within the binary section, and the section itself starts at one. */
export const RESPONSE_ALIGNMENT = 64;

/** One binary tensor of a request, as its JSON header describes it. */
export interface BlobRef {
  /** Names the tensor in messages: `inputs.x`, or `input "x"` on the OIP surface. */
  label: string;
  /** Paths into the request of the two fields, for `errors[].path`. */
  sizePath: string;
  offsetPath: string;
  size: unknown;
  /** `undefined`: the blob starts where the previous one (in the order given) ends. */
  offset: unknown;
}

/** Where a blob lies in the binary section: `[start, end)`. */
export interface BlobSpan {
  start: number;
  end: number;
}

function invalid(path: string, message: string, label?: string): never {
  throw new GradserveError('INVALID_TENSOR', label === undefined ? message : `${label}: ${message}`, { errors: [{ path, message }] });
}

const isByteCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Places `refs` (in the order their tensors appear in the JSON text) in a binary section of `length` bytes. Every byte
 * of the section must belong to exactly one tensor.
 */
export function layoutBlobs(refs: readonly BlobRef[], length: number): BlobSpan[] {
  const spans: BlobSpan[] = [];
  let next = 0;
  for (const r of refs) {
    if (!isByteCount(r.size)) invalid(r.sizePath, `binary_data_size ${String(r.size)} is not a byte count (a non-negative integer)`, r.label);
    if (r.offset !== undefined && !isByteCount(r.offset)) {
      invalid(r.offsetPath, `binary_data_offset ${String(r.offset)} is not a byte offset (a non-negative integer)`, r.label);
    }
    const start = r.offset === undefined ? next : r.offset;
    const end = start + r.size;
    if (end > length) {
      const at = r.offset === undefined ? r.sizePath : r.offsetPath;
      invalid(at, `bytes ${start} to ${end} run past the binary section of ${length} bytes (binary_data_size ${r.size}${r.offset === undefined ? '' : `, binary_data_offset ${r.offset}`})`, r.label);
    }
    spans.push({ start, end });
    next = end;
  }
  // Coverage: sorted by start, each non-empty blob must begin exactly where the bytes claimed so far end.
  const order = spans.map((_, i) => i).filter((i) => spans[i]!.end > spans[i]!.start).sort((a, b) => spans[a]!.start - spans[b]!.start || a - b);
  let covered = 0;
  let last: number | undefined;
  for (const i of order) {
    const s = spans[i]!;
    const r = refs[i]!;
    if (s.start < covered) {
      invalid(r.offset === undefined ? r.sizePath : r.offsetPath, `bytes ${s.start} to ${s.end} overlap bytes ${spans[last!]!.start} to ${spans[last!]!.end} of ${refs[last!]!.label}`, r.label);
    }
    if (s.start > covered) invalid(r.offset === undefined ? r.sizePath : r.offsetPath, `bytes ${covered} to ${s.start} of the binary section belong to no tensor`, r.label);
    covered = s.end;
    last = i;
  }
  if (covered < length) {
    const message = `bytes ${covered} to ${length} of the binary section belong to no tensor`;
    if (last === undefined) invalid('(body)', refs.length === 0 ? `the binary section has ${length} bytes but no tensor has a binary_data_size` : message);
    invalid(refs[last]!.sizePath, message, refs[last]!.label);
  }
  return spans;
}

/** `Accept` prefers `application/octet-stream` to JSON (wildcards count as JSON: binary is only sent when named). */
export function acceptsBinary(header: string | undefined): boolean {
  const accept = header?.toLowerCase();
  if (accept === undefined || !accept.includes(BINARY_CONTENT_TYPE)) return false;
  let binary = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';');
    const media = type!.trim();
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') q = Number(v);
    }
    if (!Number.isFinite(q)) continue;
    if (media === BINARY_CONTENT_TYPE) binary = Math.max(binary, q);
    else if (media === 'application/json' || media === 'application/*' || media === '*/*') json = Math.max(json, q);
  }
  return binary > 0 && binary >= json;
}

/** How a binary tensor is written in a framed response's JSON header. */
export interface FramedTensor {
  shape: number[];
  datatype: Tensor['dtype'];
  binary_data_offset: number;
  binary_data_size: number;
}

const ZEROS = Buffer.alloc(RESPONSE_ALIGNMENT);

/** The binary section of a response, built from views of the result tensors' own bytes. */
export class FrameBuilder {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  /** `align`: blob alignment in bytes (64 for /v1; 1 for OIP, whose clients expect the blobs back to back). */
  constructor(readonly align: number = RESPONSE_ALIGNMENT) {}

  /** Appends `t`'s bytes (a view, no copy) and returns where they are. An empty tensor takes no room: offset 0. */
  add(t: Tensor): { binary_data_offset: number; binary_data_size: number } {
    const d = t.data;
    if (d.byteLength === 0) return { binary_data_offset: 0, binary_data_size: 0 };
    const pad = (this.align - (this.length % this.align)) % this.align;
    if (pad > 0) {
      this.chunks.push(ZEROS.subarray(0, pad));
      this.length += pad;
    }
    const offset = this.length;
    this.chunks.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    this.length += d.byteLength;
    return { binary_data_offset: offset, binary_data_size: d.byteLength };
  }

  /** A tensor as the JSON header of a /v1 response writes it. */
  tensor(t: Tensor): FramedTensor {
    return { shape: [...t.shape], datatype: t.dtype, ...this.add(t) };
  }

  get byteLength(): number {
    return this.length;
  }

  /** The header's UTF-8 bytes (padded with spaces to the alignment, so the section starts aligned in the body too). */
  header(json: unknown): Buffer {
    const text = JSON.stringify(json);
    const n = Buffer.byteLength(text, 'utf8');
    const padded = n + ((this.align - (n % this.align)) % this.align);
    const out = Buffer.allocUnsafe(padded);
    out.write(text, 0, 'utf8');
    out.fill(0x20, n);
    return out;
  }

  /** Header, padding and blobs in order: what goes on the wire. */
  parts(json: unknown): Uint8Array[] {
    return [this.header(json), ...this.chunks];
  }
}

/**
 * Sends `json` and the frame's binary section as one framed response: a Readable that pushes every part at its first
 * read, so the socket gets them in one go, and Fastify's hooks still run. Content-Length is known up front, so the
 * answer is not chunked. For a 64 MiB result (bench/http/frame-send.mjs) this is as fast as hijacking the reply and
 * writing the parts corked (136 vs 136 ms round trip on loopback, ~15 ms of server CPU each), a little faster than
 * `Readable.from(parts)` (143 ms), and well ahead of one Buffer.concat of it all (216 ms, 86 ms of CPU).
 */
export function sendFrame(reply: FastifyReply, json: unknown, frame: FrameBuilder): FastifyReply {
  const parts = frame.parts(json);
  const headerLength = parts[0]!.byteLength;
  reply.header('inference-header-content-length', String(headerLength));
  reply.header('content-length', String(headerLength + frame.byteLength));
  reply.type(BINARY_CONTENT_TYPE);
  const body = new Readable({
    read() {
      for (const p of parts) this.push(p);
      this.push(null);
    },
  });
  return reply.send(body);
}
