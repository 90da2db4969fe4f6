/**
 * The size of an answer, estimated from the shapes the plan will return, checked before anything runs. A JSON or
 * b64 answer is built in memory as JavaScript strings and arrays: past a few hundred MiB it cannot be built at all
 * (V8 refuses strings over 2^29 - 24 characters and aborts the process on arrays of more than ~2^27 elements), so an
 * answer over the limit is 413 TOO_LARGE, suggesting binary framing, whose blobs are the result arrays themselves.
 */
import type { CostEstimate } from '../engine.types.js';
import { GradserveError, fmtBytes, fmtShape } from '../errors.js';
import { BYTES_PER_ELEMENT, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/tensor.js';
import type { ServerConfig } from './config.js';
import type { ResponseEncoding } from './tensors.js';

/** Text answers never grow past this, whatever the setting: the JSON text of an answer is one string. */
export const MAX_TEXT_RESPONSE_BYTES = 496 * 1024 ** 2;

/** The longest JSON text of one element, separator included (`-1.7976931348623157e+308,`, `-2147483648,`, an INT64 beyond 2^53 as a string on /v2, `false,`). */
const JSON_BYTES: Record<DType, number> = { FP32: 25, FP64: 25, INT32: 12, INT64: 23, BOOL: 6 };
/** Shape, datatype, name and punctuation of one tensor, and a blob's alignment padding. */
const PER_TENSOR = 64;

export function tensorResponseBytes(shape: readonly number[], dtype: DType, encoding: ResponseEncoding): number {
  const n = numel(shape);
  switch (encoding) {
    case 'json':
      return PER_TENSOR + n * JSON_BYTES[dtype];
    case 'b64':
      return PER_TENSOR + 4 * Math.ceil((n * BYTES_PER_ELEMENT[dtype]) / 3);
    case 'binary':
      return PER_TENSOR + n * BYTES_PER_ELEMENT[dtype];
  }
}

const WORDS: Record<ResponseEncoding, string> = { json: 'JSON', b64: 'b64', binary: 'binary' };

/**
 * Refuses (413 TOO_LARGE) when the tensors of `outputs` that the answer carries would not fit its limit. `encodingOf`
 * says how the answer writes a returned tensor, or undefined when the answer leaves it out.
 */
export function checkResponseSize(
  outputs: CostEstimate['outputs'],
  encodingOf: (name: string) => ResponseEncoding | undefined,
  config: Pick<ServerConfig, 'responseLimitBytes' | 'binaryResponseLimitBytes'>,
): void {
  if (outputs === undefined) return;
  let text = 0;
  let binary = 0;
  let biggest: { name: string; shape: readonly number[]; datatype: DType; bytes: number; encoding: ResponseEncoding } | undefined;
  for (const o of outputs) {
    const encoding = encodingOf(o.name);
    if (encoding === undefined) continue;
    const bytes = tensorResponseBytes(o.shape, o.datatype, encoding);
    if (encoding === 'binary') binary += bytes;
    else text += bytes;
    if (biggest === undefined || bytes > biggest.bytes) biggest = { ...o, bytes, encoding };
  }
  const textLimit = Math.min(config.responseLimitBytes, MAX_TEXT_RESPONSE_BYTES);
  const largest = biggest === undefined ? '' : `; the largest tensor, ${biggest.name} ${fmtShape(biggest.shape)} ${biggest.datatype}, takes about ${fmtBytes(biggest.bytes)} as ${WORDS[biggest.encoding]}`;
  if (text > textLimit) {
    const asBinary = outputs.reduce((s, o) => s + (encodingOf(o.name) === undefined ? 0 : tensorResponseBytes(o.shape, o.datatype, 'binary')), 0);
    const way = asBinary <= config.binaryResponseLimitBytes
      ? `ask for "encoding": "binary" (or Accept: application/octet-stream), which sends the raw bytes, about ${fmtBytes(asBinary)}`
      : `even as raw bytes ("encoding": "binary") it would be about ${fmtBytes(asBinary)}, over the binary response limit of ${fmtBytes(config.binaryResponseLimitBytes)} (GRADSERVE_BINARY_RESPONSE_LIMIT); ask for less`;
    throw new GradserveError('TOO_LARGE',
      `the answer would be about ${fmtBytes(text)} of text, over the response limit of ${fmtBytes(textLimit)} (GRADSERVE_RESPONSE_LIMIT)${largest}; ${way}`);
  }
  if (binary > config.binaryResponseLimitBytes) {
    throw new GradserveError('TOO_LARGE',
      `the answer would be about ${fmtBytes(binary)} of binary data, over the binary response limit of ${fmtBytes(config.binaryResponseLimitBytes)} (GRADSERVE_BINARY_RESPONSE_LIMIT)${largest}; ask for less`);
  }
}
