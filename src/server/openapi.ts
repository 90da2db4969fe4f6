/**
 * The binary form of the /v1 endpoints in the OpenAPI document (API.md "Binary framing"). The zod schemas describe
 * the JSON part, including the binary tensor objects; what no JSON schema can say (the second request content type,
 * the header that splits the body, the framed answer) is added here to every POST /v1 operation.
 */
import { BINARY_CONTENT_TYPE, RESPONSE_ALIGNMENT } from './framing.js';

const HEADER = 'Inference-Header-Content-Length';

const headerParameter = {
  name: HEADER,
  in: 'header',
  required: false,
  description: `Binary framing: the length in bytes of the JSON part that starts a ${BINARY_CONTENT_TYPE} body; the bytes after it are the binary section that tensors of the form {shape, datatype, binary_data_size, binary_data_offset?} refer to. Without binary_data_offset, a tensor's bytes follow those of the binary tensor before it in the JSON text (the first at 0). Every byte of the section must belong to exactly one tensor. Send Accept: ${BINARY_CONTENT_TYPE} (or "encoding": "binary") to get a framed answer.`,
  schema: { type: 'integer', minimum: 0 },
};

const framedRequest = {
  schema: {
    type: 'string',
    format: 'binary',
    description: `The JSON body (the application/json schema; any tensor may be {shape, datatype, binary_data_size, binary_data_offset?}) in its first ${HEADER} bytes, then the binary section: little-endian row-major tensor bytes.`,
  },
};

const framedResponse = {
  description: `Framed answer (request "encoding": "binary", or Accept: ${BINARY_CONTENT_TYPE}): the JSON answer, padded with spaces to a multiple of ${RESPONSE_ALIGNMENT} bytes, in its first ${HEADER} bytes, then the binary section. Every tensor is {shape, datatype, binary_data_offset, binary_data_size}; each blob starts at a multiple of ${RESPONSE_ALIGNMENT} bytes in the section, with zero bytes between blobs, so a client can view each one in place.`,
  headers: { [HEADER]: { description: 'Length of the JSON part of the body, in bytes', schema: { type: 'integer', minimum: 0 } } },
  content: { [BINARY_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } } },
};

type Operation = {
  parameters?: unknown[];
  requestBody?: { content?: Record<string, unknown> };
  responses?: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, unknown> }>;
};

/**
 * Adds the framed request to every POST /v1 operation that takes a JSON body, and the framed answer to those that
 * answer JSON (a picture from /v1/render is never framed).
 */
export function documentBinaryFraming<T extends object>(doc: T): T {
  const paths = (doc as { paths?: Record<string, { post?: Operation } | undefined> }).paths ?? {};
  for (const [path, item] of Object.entries(paths)) {
    if (!path.startsWith('/v1/')) continue;
    const op = item?.post;
    const json = op?.requestBody?.content?.['application/json'];
    if (op === undefined || json === undefined) continue;
    op.requestBody!.content![BINARY_CONTENT_TYPE] = framedRequest;
    op.parameters = [...(op.parameters ?? []).filter((p) => (p as { name?: string }).name !== HEADER), headerParameter];
    const ok = op.responses?.['200'];
    if (ok?.content?.['application/json'] !== undefined) {
      ok.content = { ...ok.content, [BINARY_CONTENT_TYPE]: framedResponse.content[BINARY_CONTENT_TYPE] };
      ok.headers = { ...ok.headers, ...framedResponse.headers };
      ok.description = `${ok.description ?? 'Default Response'}. ${framedResponse.description}`;
    }
  }
  return doc;
}
