/**
 * GradserveClient: one method per endpoint of the wire contract, typed arrays in and out. Global `fetch`,
 * `AbortController`, `atob`/`btoa` are all it needs, so the same code runs in Node >= 20, Deno, Bun and browsers; in
 * Node it moves bytes with node:http by default (src/client/transport.ts), about twice as fast for large exchanges.
 *
 * Requests whose typed-array tensors hold more than `binaryThresholdBytes` travel in binary framing (raw bytes after
 * a JSON header, API.md "Binary framing") and ask for a framed answer, whose tensors are then views of the answer's
 * bytes; smaller requests are JSON (b64 for tensors above `b64Threshold` elements) and ask for b64 answers.
 */
import { bytesToBase64, decodeTensorMap, decodeTensorMap2, encodeTensor, encodeTensorMap, type EncodeOptions, fromWireNumber, typedBytes } from './codec.js';
import { errorFromResponse, GradserveClientError } from './errors.js';
import { BINARY_CONTENT_TYPE, blobOf, HEADER_LENGTH, readFrame, RequestFrame } from './framing.js';
import type {
  Encoding, EvaluateRequest, EvaluateResponse, GradcheckResponse, GradcheckRequest, GradRequest, GradResponse, GraphSpec, ImportOnnxOptions, ImportOnnxResponse,
  HessianRequest, HessianResponse, HvpRequest, HvpResponse, JacobianRequest, JacobianResponse, JvpRequest, JvpResponse,
  OipInferRequest, OipInferResponse, OipModelMetadata, OipServerMetadata, OpsResponse, RenderFormat, RenderRequest, ShapesRequest, ShapesResponse,
  TensorInput, TransformRequest, TransformResponse, VjpRequest, VjpResponse, WireGraph, WireTensor,
} from './types.js';
import { buildInferBody, parseInferResponse } from './oip.js';
import { fetchTransport, hasNodeHttp, type NodeTransport, nodeTransport, type Transport, type WireAnswer } from './transport.js';

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:8080`; a trailing slash is fine. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when the service has API keys configured. */
  apiKey?: string;
  /** Per-request time limit on the client side; the call rejects with code `TIMEOUT`. */
  timeoutMs?: number;
  /** Request tensors with more elements than this travel as b64 (default 64). `Infinity` keeps everything JSON. */
  b64Threshold?: number;
  /**
   * How the service should write response tensors when the request is not framed (default `b64`: exact, compact,
   * fast to decode). A framed request asks for a framed (`binary`) answer unless the request sets `encoding`.
   */
  responseEncoding?: Encoding;
  /**
   * Binary framing of requests: `auto` (default) frames a request whose typed-array tensors (inputs, cotangents,
   * tangents, vectors, graph constants) hold more than `binaryThresholdBytes` bytes in all; `always` frames every
   * request that has typed-array tensors; `never` keeps every request JSON.
   */
  binary?: 'auto' | 'always' | 'never';
  /** The `auto` threshold in bytes of tensor data (default 4096). */
  binaryThresholdBytes?: number;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation (tests, custom agents); defaults to the global one. Setting it selects `transport: 'fetch'`. */
  fetch?: typeof fetch;
  /**
   * `auto` (default): node:http with a keep-alive agent where it exists (Node), else fetch. `fetch` or `node` force
   * one. Call `close()` to drop the node agent's idle connections early (they never keep a process alive).
   */
  transport?: 'auto' | 'fetch' | 'node';
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A body already serialised (binary framing, JSON), with its own content headers. */
interface RawBody {
  raw: string | Uint8Array | Uint8Array[];
  headers: Record<string, string>;
}
const isRaw = (b: unknown): b is RawBody => b !== null && typeof b === 'object' && 'raw' in b && 'headers' in b;

/** An answer: its JSON, and the binary section its binary tensors point into when it was framed. */
interface Answer {
  json: Record<string, unknown>;
  section: Uint8Array | undefined;
}

type TensorMaps = Record<string, Record<string, TensorInput> | undefined>;

/** Default of `binaryThresholdBytes`: above a few KiB, JSON number text and base64 cost more than framing. */
export const BINARY_THRESHOLD_BYTES = 4096;

/** Read a float the service may have written as "NaN"/"Infinity" (gradcheck errors can be non-finite). */
const num = (v: unknown): number => fromWireNumber(v);

export class GradserveClient {
  readonly baseUrl: string;
  private readonly opts: ClientOptions;
  private readonly enc: EncodeOptions;
  private readonly transport: Transport;
  private readonly node: NodeTransport | undefined;

  constructor(options: string | ClientOptions) {
    this.opts = typeof options === 'string' ? { baseUrl: options } : { ...options };
    this.baseUrl = this.opts.baseUrl.replace(/\/+$/, '');
    this.enc = { b64Threshold: this.opts.b64Threshold ?? 64 };
    const kind = this.opts.transport ?? 'auto';
    if (kind === 'node' || (kind === 'auto' && this.opts.fetch === undefined && hasNodeHttp())) {
      this.node = nodeTransport();
      this.transport = this.node.send;
    } else {
      // Calling an unbound `fetch` throws "Illegal invocation" in browsers, hence the arrow.
      this.transport = fetchTransport(this.opts.fetch ?? ((input, init) => globalThis.fetch(input, init)));
    }
  }

  /** Closes idle keep-alive connections (node transport); the client stays usable. */
  close(): void {
    this.node?.close();
  }

  // ------------------------------------------------------------ v1: values and derivatives

  async evaluate(req: EvaluateRequest, o?: CallOptions): Promise<EvaluateResponse> {
    const { json: r, section } = await this.postTensors('/v1/evaluate', req, { outputs: req.outputs }, {}, o);
    return { outputs: decodeTensorMap(r.outputs, section) };
  }

  async grad(req: GradRequest, o?: CallOptions): Promise<GradResponse> {
    const { json: r, section } = await this.postTensors('/v1/grad', req, { of: req.of, wrt: req.wrt, per_example: req.per_example }, {}, o);
    return { outputs: decodeTensorMap(r.outputs, section), gradients: decodeTensorMap(r.gradients, section) };
  }

  async vjp(req: VjpRequest, o?: CallOptions): Promise<VjpResponse> {
    const { json: r, section } = await this.postTensors('/v1/vjp', req, { wrt: req.wrt, batched: req.batched }, { cotangents: req.cotangents }, o);
    return { outputs: decodeTensorMap(r.outputs, section), gradients: decodeTensorMap(r.gradients, section) };
  }

  async jvp(req: JvpRequest, o?: CallOptions): Promise<JvpResponse> {
    const { json: r, section } = await this.postTensors('/v1/jvp', req, { of: req.of, batched: req.batched }, { tangents: req.tangents }, o);
    return { outputs: decodeTensorMap(r.outputs, section), tangents: decodeTensorMap(r.tangents, section) };
  }

  async jacobian(req: JacobianRequest, o?: CallOptions): Promise<JacobianResponse> {
    const { json: r, section } = await this.postTensors('/v1/jacobian', req, { of: req.of, wrt: req.wrt, mode: req.mode }, {}, o);
    return { outputs: decodeTensorMap(r.outputs, section), jacobians: decodeTensorMap2(r.jacobians, section), mode: r.mode as JacobianResponse['mode'] };
  }

  async hvp(req: HvpRequest, o?: CallOptions): Promise<HvpResponse> {
    const { json: r, section } = await this.postTensors('/v1/hvp', req, { of: req.of, batched: req.batched }, { vectors: req.vectors }, o);
    return { outputs: decodeTensorMap(r.outputs, section), gradients: decodeTensorMap(r.gradients, section), hvp: decodeTensorMap(r.hvp, section) };
  }

  async hessian(req: HessianRequest, o?: CallOptions): Promise<HessianResponse> {
    const { json: r, section } = await this.postTensors('/v1/hessian', req, { of: req.of, wrt: req.wrt }, {}, o);
    return { outputs: decodeTensorMap(r.outputs, section), hessians: decodeTensorMap2(r.hessians, section) };
  }

  async gradcheck(req: GradcheckRequest, o?: CallOptions): Promise<GradcheckResponse> {
    // The answer holds no tensors: only the request may be framed.
    const { json: r } = await this.postTensors('/v1/gradcheck', req, { of: req.of, wrt: req.wrt, eps: req.eps, atol: req.atol, rtol: req.rtol }, {}, o, false);
    const perInput = Object.create(null) as GradcheckResponse['perInput'];
    for (const [k, v] of Object.entries((r.perInput ?? {}) as Record<string, Record<string, unknown>>)) {
      perInput[k] = { ok: v.ok === true, maxAbsError: num(v.maxAbsError), maxRelError: num(v.maxRelError) };
    }
    return { ok: r.ok === true, maxAbsError: num(r.maxAbsError), maxRelError: num(r.maxRelError), perInput };
  }

  /** Symbolic differentiation: the returned graph can be evaluated or transformed again. */
  async transform(req: TransformRequest, o?: CallOptions): Promise<TransformResponse> {
    const frame = this.frameFor(req.graph, []);
    const enc = frame === undefined ? this.enc : { ...this.enc, frame };
    const { json: r, section } = await this.exchange('POST', '/v1/transform', this.body({ ...req, graph: this.encodeGraph(req.graph, enc) }, frame), o);
    const graph = r.graph as WireGraph;
    // A framed answer's constants point into its binary section; the graph returned is plain JSON (b64), to send on.
    if (section !== undefined && graph.constants !== undefined) {
      const constants: Record<string, WireTensor> = {};
      for (const [k, c] of Object.entries(graph.constants)) {
        constants[k] = c.binary_data_size === undefined ? c : { shape: c.shape, datatype: c.datatype, b64: bytesToBase64(blobOf(c, section)) };
      }
      graph.constants = constants;
    }
    return { graph };
  }

  /** Shape inference and cost estimate; nothing is executed. */
  async shapes(req: ShapesRequest, o?: CallOptions): Promise<ShapesResponse> {
    const tensors: Record<string, TensorInput> = {};
    const inputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(req.inputs ?? {})) {
      const spec = v as { shape?: unknown; data?: unknown; b64?: unknown };
      const dataless = spec !== null && typeof spec === 'object' && 'shape' in spec && spec.data === undefined && spec.b64 === undefined;
      if (dataless) inputs[k] = spec;
      else tensors[k] = v as TensorInput;
    }
    const frame = this.frameFor(req.graph, [tensors]);
    const enc = frame === undefined ? this.enc : { ...this.enc, frame };
    for (const [k, v] of Object.entries(tensors)) inputs[k] = encodeTensor(v, enc);
    const { json: r } = await this.exchange('POST', '/v1/shapes', this.body({ graph: this.encodeGraph(req.graph, enc), model: req.model, inputs, encoding: req.encoding }, frame), o);
    return { values: r.values as ShapesResponse['values'], flops: num(r.flops), peakBytes: num(r.peakBytes) };
  }

  /**
   * A picture of the graph (and of its derivative graph beside it with `transform`): SVG text, or Graphviz DOT text
   * with `format: 'dot'`.
   */
  async render(req: RenderRequest, format: RenderFormat = 'svg', o?: CallOptions): Promise<string> {
    const accept = `${format === 'svg' ? 'image/svg+xml' : 'text/vnd.graphviz'}, application/problem+json`;
    const body = { raw: JSON.stringify({ ...req, graph: this.encodeGraph(req.graph) }), headers: { 'content-type': 'application/json', accept } };
    return this.send('POST', `/v1/render?format=${format}`, body, o, (res) => res.text());
  }

  /** Imports an ONNX model (the bytes of an .onnx file): its graph, its parameters and (by default) their values. */
  async importOnnx(model: Uint8Array, opts: ImportOnnxOptions = {}, o?: CallOptions): Promise<ImportOnnxResponse> {
    const weights = opts.weights ?? 'b64';
    const q = new URLSearchParams({ weights });
    if (opts.dims !== undefined) q.set('dims', Object.entries(opts.dims).map(([k, v]) => `${k}:${v}`).join(','));
    const accept = weights === 'binary' ? `${BINARY_CONTENT_TYPE}, application/problem+json` : 'application/json, application/problem+json';
    const { json: r, section } = await this.exchange('POST', `/v1/import/onnx?${q.toString()}`, { raw: model, headers: { 'content-type': 'application/onnx', accept } }, o);
    const parameters: ImportOnnxResponse['parameters'] = {};
    const raw = (r.parameters ?? {}) as Record<string, { shape: number[]; datatype: string }>;
    for (const [k, p] of Object.entries(raw)) parameters[k] = { shape: p.shape, datatype: p.datatype };
    const values = weights === 'none' ? {} : decodeTensorMap(raw, section);
    return { graph: r.graph as WireGraph, parameters, values, notes: (r.notes ?? []) as string[] };
  }

  async ops(o?: CallOptions): Promise<OpsResponse> {
    return (await this.request('GET', '/v1/ops', undefined, o)) as unknown as OpsResponse;
  }

  // ------------------------------------------------------------ operations

  async openapi(o?: CallOptions): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json', undefined, o);
  }

  /** Prometheus text exposition. */
  async metrics(o?: CallOptions): Promise<string> {
    return this.send('GET', '/metrics', undefined, o, (res) => res.text());
  }

  // ------------------------------------------------------------ Open Inference Protocol (KServe v2)

  /** Liveness by status code: true on 200, false on 503; other answers raise. */
  async live(o?: CallOptions): Promise<boolean> {
    return this.health('/v2/health/live', o);
  }

  async ready(o?: CallOptions): Promise<boolean> {
    return this.health('/v2/health/ready', o);
  }

  async serverMetadata(o?: CallOptions): Promise<OipServerMetadata> {
    return (await this.request('GET', '/v2', undefined, o)) as unknown as OipServerMetadata;
  }

  async modelMetadata(model: string, o?: CallOptions): Promise<OipModelMetadata> {
    return (await this.request('GET', `/v2/models/${encodeURIComponent(model)}`, undefined, o)) as unknown as OipModelMetadata;
  }

  /** True when the model exists and can serve; an unknown model raises NOT_FOUND (404). */
  async modelReady(model: string, o?: CallOptions): Promise<boolean> {
    const r = await this.request('GET', `/v2/models/${encodeURIComponent(model)}/ready`, undefined, o);
    return r.ready === true;
  }

  /**
   * OIP inference. Inputs with more than `binaryThreshold` elements (default: the client's `b64Threshold`) travel
   * in the binary tensor data extension; `binaryOutputs: true` asks for the outputs in binary too.
   */
  async infer(model: string, req: OipInferRequest, o?: CallOptions & { binaryThreshold?: number; binaryOutputs?: boolean }): Promise<OipInferResponse> {
    const { body, headers } = buildInferBody(req, { binaryThreshold: o?.binaryThreshold ?? this.enc.b64Threshold, binaryOutputs: o?.binaryOutputs ?? false });
    const path = `/v2/models/${encodeURIComponent(model)}/infer`;
    const { bytes, headerLength } = await this.send('POST', path, { raw: body, headers }, o, async (res) => ({
      bytes: new Uint8Array(await res.arrayBuffer()),
      headerLength: res.headers.get('inference-header-content-length'),
    }));
    try {
      return parseInferResponse(bytes, headerLength);
    } catch (e) {
      throw new GradserveClientError({ code: 'INVALID_RESPONSE', status: 200, detail: `POST ${path}: ${(e as Error).message}` }, { cause: e });
    }
  }

  // ------------------------------------------------------------ plumbing

  private encodeGraph(g: GraphSpec | undefined, enc: EncodeOptions = this.enc): WireGraph | undefined {
    if (g === undefined || g.constants === undefined) return g as WireGraph | undefined;
    return { ...g, constants: encodeTensorMap(g.constants, enc) } as WireGraph;
  }

  /** A frame for a request with these tensors (and the graph's constants), or undefined when it stays JSON. */
  private frameFor(graph: GraphSpec | undefined, maps: (Record<string, TensorInput> | undefined)[]): RequestFrame | undefined {
    const mode = this.opts.binary ?? 'auto';
    if (mode === 'never') return undefined;
    let bytes = 0;
    let typed = 0;
    for (const m of [graph?.constants, ...maps]) {
      for (const v of Object.values(m ?? {})) {
        const n = typedBytes(v);
        bytes += n;
        if (n > 0 || ArrayBuffer.isView((v as { data?: unknown }).data) || ArrayBuffer.isView(v)) typed++;
      }
    }
    if (typed === 0) return undefined;
    return mode === 'always' || bytes > (this.opts.binaryThresholdBytes ?? BINARY_THRESHOLD_BYTES) ? new RequestFrame() : undefined;
  }

  /** The request as it travels: framed when a frame holds tensors, else JSON; a binary answer is asked for in Accept too. */
  private body(json: Record<string, unknown>, frame: RequestFrame | undefined): RawBody {
    const accept = json.encoding === 'binary' ? `${BINARY_CONTENT_TYPE}, application/problem+json` : 'application/json, application/problem+json';
    if (frame !== undefined && frame.size > 0) {
      const { parts, headers } = frame.build(json);
      return { raw: parts, headers: { ...headers, accept } };
    }
    return { raw: JSON.stringify(json), headers: { 'content-type': 'application/json', accept } };
  }

  /**
   * A request with tensors: framed above the threshold (then the answer is asked for framed too, unless the request
   * sets `encoding`), else JSON with the client's response encoding. `tensorAnswer: false` for answers without tensors.
   */
  private postTensors(path: string, req: { graph?: GraphSpec; model?: string; inputs?: EvaluateRequest['inputs']; encoding?: Encoding }, extra: Record<string, unknown>, maps: TensorMaps, o?: CallOptions, tensorAnswer = true): Promise<Answer> {
    const frame = this.frameFor(req.graph, [req.inputs, ...Object.values(maps)]);
    const enc = frame === undefined ? this.enc : { ...this.enc, frame };
    const json: Record<string, unknown> = { graph: this.encodeGraph(req.graph, enc), model: req.model, inputs: encodeTensorMap(req.inputs ?? {}, enc), ...extra };
    for (const [k, m] of Object.entries(maps)) json[k] = encodeTensorMap(m, enc);
    json.encoding = req.encoding ?? (!tensorAnswer ? undefined : frame !== undefined ? 'binary' : (this.opts.responseEncoding ?? 'b64'));
    return this.exchange('POST', path, this.body(json, frame), o);
  }

  private async health(path: string, o?: CallOptions): Promise<boolean> {
    return this.send('GET', path, undefined, o, async (res) => {
      await res.discard();
      return res.status === 200;
    }, [503]);
  }

  private async request(method: string, path: string, body: unknown, o?: CallOptions): Promise<Record<string, unknown>> {
    return (await this.exchange(method, path, body, o)).json;
  }

  /** One request whose answer is a JSON object, or a framed answer (a JSON object and its binary section). */
  private async exchange(method: string, path: string, body: unknown, o?: CallOptions): Promise<Answer> {
    const { status, text, bytes, headerLength } = await this.send(method, path, body, o, async (res) => {
      const headerLength = res.headers.get(HEADER_LENGTH);
      // A framed answer is read once into one buffer; its tensors are views of it.
      if (headerLength !== null) return { status: res.status, text: undefined, bytes: new Uint8Array(await res.arrayBuffer()), headerLength };
      return { status: res.status, text: await res.text(), bytes: undefined, headerLength };
    });
    let json: unknown;
    let section: Uint8Array | undefined;
    try {
      if (bytes !== undefined) ({ json, section } = readFrame(bytes, headerLength!));
      else json = JSON.parse(text!);
    } catch {
      // fall through to the typed error
    }
    if (json !== null && typeof json === 'object') return { json: json as Record<string, unknown>, section };
    const shown = text ?? `a framed answer of ${bytes!.byteLength} bytes with Inference-Header-Content-Length ${headerLength}`;
    throw new GradserveClientError({ code: 'INVALID_RESPONSE', status, detail: `${method} ${path}: expected a JSON object, got ${JSON.stringify(shown.slice(0, 200))}`, body: text });
  }

  /**
   * One HTTP exchange; non-2xx answers (except `allowStatus`) become GradserveClientError. The body is read inside,
   * so the timeout and the caller's signal cover the whole download, not just the headers.
   */
  private async send<T>(method: string, path: string, body: unknown, o: CallOptions | undefined, read: (res: WireAnswer) => Promise<T>, allowStatus: number[] = []): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...this.opts.headers };
    let payload: string | Uint8Array[] | undefined;
    if (isRaw(body)) {
      payload = typeof body.raw === 'string' || Array.isArray(body.raw) ? body.raw : [body.raw];
      Object.assign(headers, body.headers);
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    if (this.opts.apiKey !== undefined) headers.authorization = `Bearer ${this.opts.apiKey}`;

    const ctrl = new AbortController();
    let timedOut = false;
    const timer = this.opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      ctrl.abort();
    }, this.opts.timeoutMs);
    const onAbort = () => ctrl.abort();
    if (o?.signal?.aborted) ctrl.abort();
    o?.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let res: WireAnswer;
      try {
        res = await this.transport({ method, url: this.baseUrl + path, headers, body: payload, signal: ctrl.signal });
      } catch (e) {
        if (timedOut) throw new GradserveClientError({ code: 'TIMEOUT', status: 0, detail: `${method} ${path}: no answer within ${this.opts.timeoutMs} ms` }, { cause: e });
        if (ctrl.signal.aborted) throw new GradserveClientError({ code: 'ABORTED', status: 0, detail: `${method} ${path}: aborted by the caller` }, { cause: e });
        // Node's fetch says only "fetch failed"; the useful part (ECONNREFUSED, ENOTFOUND) is in its cause. node:http
        // errors carry the code themselves.
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const code = (e as { code?: string }).code;
        const why = [(e as Error).message, cause?.code ?? cause?.message ?? (code !== undefined && !(e as Error).message.includes(code) ? code : undefined)].filter(Boolean).join(': ');
        throw new GradserveClientError({ code: 'NETWORK_ERROR', status: 0, detail: `${method} ${this.baseUrl}${path}: ${why}` }, { cause: e });
      }
      if (!res.ok && !allowStatus.includes(res.status)) throw await errorFromResponse(res);
      try {
        return await read(res);
      } catch (e) {
        if (timedOut) throw new GradserveClientError({ code: 'TIMEOUT', status: res.status, detail: `${method} ${path}: body not received within ${this.opts.timeoutMs} ms` }, { cause: e });
        throw e;
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      o?.signal?.removeEventListener('abort', onAbort);
    }
  }
}
