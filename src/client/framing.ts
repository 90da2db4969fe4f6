/**
 * Binary framing on the client side (API.md "Binary framing"): a request is a JSON header followed by raw
 * little-endian tensor bytes, its length in `Inference-Header-Content-Length`; a framed answer is read the same way,
 * and its tensors are typed-array views of the answer's bytes (the service aligns every blob for that).
 */
import { BYTES_PER_ELEMENT } from '../tensor/dtype.js';
import type { DType, TypedArray } from './types.js';

export const BINARY_CONTENT_TYPE = 'application/octet-stream';
export const HEADER_LENGTH = 'inference-header-content-length';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A typed array's bytes in the wire's little-endian order: a view, except on a big-endian host (a swapped copy). */
export function littleEndianBytes(d: TypedArray): Uint8Array {
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN || d.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i += d.BYTES_PER_ELEMENT) out.subarray(i, i + d.BYTES_PER_ELEMENT).reverse();
  return out;
}

/** A tensor in the JSON part of a framed body. */
export interface BinaryTensorRef {
  shape: number[];
  datatype: DType;
  binary_data_size: number;
  binary_data_offset: number;
}

/** The binary section of one request, filled while its JSON body is built. */
export class RequestFrame {
  private readonly blobs: { ref: BinaryTensorRef; bytes: Uint8Array; width: number }[] = [];

  /** The tensor's JSON stand-in; its offset is settled by `build`. */
  add(shape: readonly number[], datatype: DType, data: TypedArray): BinaryTensorRef {
    const bytes = littleEndianBytes(data);
    const ref: BinaryTensorRef = { shape: [...shape], datatype, binary_data_size: bytes.byteLength, binary_data_offset: 0 };
    this.blobs.push({ ref, bytes, width: BYTES_PER_ELEMENT[datatype] });
    return ref;
  }

  get size(): number {
    return this.blobs.length;
  }

  /**
   * The framed body as its parts: the JSON header, then the tensors' own bytes (views, not copies). Blobs are laid
   * out widest elements first and the JSON is padded with spaces to a multiple of 8 bytes, so every blob starts at a
   * multiple of its element width and the service can use it without copying.
   */
  build(json: unknown): { parts: Uint8Array[]; headers: Record<string, string> } {
    const order = [...this.blobs].sort((a, b) => b.width - a.width);
    let length = 0;
    for (const b of order) {
      b.ref.binary_data_offset = length;
      length += b.bytes.byteLength;
    }
    const text = new TextEncoder().encode(JSON.stringify(json));
    const head = text.byteLength + ((8 - (text.byteLength % 8)) % 8);
    const header = new Uint8Array(head);
    header.set(text, 0);
    header.fill(0x20, text.byteLength, head);
    const parts: Uint8Array[] = [header];
    for (const b of order) if (b.bytes.byteLength > 0) parts.push(b.bytes);
    return { parts, headers: { 'content-type': BINARY_CONTENT_TYPE, [HEADER_LENGTH]: String(head) } };
  }
}

/** Splits a framed answer into its JSON part and its binary section (a view; no bytes are copied). */
export function readFrame(bytes: Uint8Array, headerLength: string): { json: unknown; section: Uint8Array } {
  const n = Number(headerLength);
  if (!Number.isSafeInteger(n) || n < 0 || n > bytes.byteLength) {
    throw new RangeError(`Inference-Header-Content-Length ${headerLength} does not fit a body of ${bytes.byteLength} bytes`);
  }
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(0, n))), section: bytes.subarray(n) };
}

/** The bytes of a binary tensor of a framed answer, checked against the section. */
export function blobOf(w: { binary_data_size?: unknown; binary_data_offset?: unknown }, section: Uint8Array | undefined): Uint8Array {
  const size = w.binary_data_size;
  const offset = w.binary_data_offset ?? 0;
  if (section === undefined) throw new RangeError('a binary tensor (binary_data_size) in an answer that is not framed');
  if (typeof size !== 'number' || typeof offset !== 'number' || !Number.isSafeInteger(size) || !Number.isSafeInteger(offset) || size < 0 || offset < 0 || offset + size > section.byteLength) {
    throw new RangeError(`binary tensor at offset ${String(offset)} of ${String(size)} bytes does not fit the binary section of ${section.byteLength} bytes`);
  }
  return section.subarray(offset, offset + size);
}
