/**
 * GradserveClient: one method per endpoint of the wire contract, typed arrays in and out. Only global `fetch`,
 * `AbortController`, `atob`/`btoa` are used, so the same code runs in Node >= 20, Deno, Bun and browsers.
 */
import { decodeTensorMap, decodeTensorMap2, encodeTensor, encodeTensorMap, type EncodeOptions, fromWireNumber } from './codec.js';
import { errorFromResponse, GradserveClientError } from './errors.js';
import type {
  Encoding, EvaluateRequest, EvaluateResponse, GradcheckResponse, GradcheckRequest, GradRequest, GradResponse, GraphSpec,
  HessianRequest, HessianResponse, HvpRequest, HvpResponse, JacobianRequest, JacobianResponse, JvpRequest, JvpResponse,
  OipInferRequest, OipInferResponse, OipModelMetadata, OipServerMetadata, OpsResponse, ShapesRequest, ShapesResponse,
  TransformRequest, TransformResponse, VjpRequest, VjpResponse, WireGraph,
} from './types.js';
import { buildInferBody, parseInferResponse } from './oip.js';

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:8080`; a trailing slash is fine. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when the service has API keys configured. */
  apiKey?: string;
  /** Per-request time limit on the client side; the call rejects with code `TIMEOUT`. */
  timeoutMs?: number;
  /** Request tensors with more elements than this travel as b64 (default 64). `Infinity` keeps everything JSON. */
  b64Threshold?: number;
  /** How the service should write response tensors (default `b64`: exact, compact, fast to decode). */
  responseEncoding?: Encoding;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation (tests, custom agents); defaults to the global one. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** A body already serialised (the OIP binary extension), with its own content headers. */
interface RawBody {
  raw: string | Uint8Array;
  headers: Record<string, string>;
}
const isRaw = (b: unknown): b is RawBody => b !== null && typeof b === 'object' && 'raw' in b && 'headers' in b;

/** Read a float the service may have written as "NaN"/"Infinity" (gradcheck errors can be non-finite). */
const num = (v: unknown): number => fromWireNumber(v);

export class GradserveClient {
  readonly baseUrl: string;
  private readonly opts: ClientOptions;
  private readonly enc: EncodeOptions;
  private readonly doFetch: typeof fetch;

  constructor(options: string | ClientOptions) {
    this.opts = typeof options === 'string' ? { baseUrl: options } : { ...options };
    this.baseUrl = this.opts.baseUrl.replace(/\/+$/, '');
    this.enc = { b64Threshold: this.opts.b64Threshold ?? 64 };
    // Calling an unbound `fetch` throws "Illegal invocation" in browsers, hence the arrow.
    this.doFetch = this.opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  // ------------------------------------------------------------ v1: values and derivatives

  async evaluate(req: EvaluateRequest, o?: CallOptions): Promise<EvaluateResponse> {
    const r = await this.postTensors('/v1/evaluate', req, { outputs: req.outputs }, o);
    return { outputs: decodeTensorMap(r.outputs) };
  }

  async grad(req: GradRequest, o?: CallOptions): Promise<GradResponse> {
    const r = await this.postTensors('/v1/grad', req, { of: req.of, wrt: req.wrt }, o);
    return { outputs: decodeTensorMap(r.outputs), gradients: decodeTensorMap(r.gradients) };
  }

  async vjp(req: VjpRequest, o?: CallOptions): Promise<VjpResponse> {
    const r = await this.postTensors('/v1/vjp', req, { cotangents: encodeTensorMap(req.cotangents, this.enc), wrt: req.wrt }, o);
    return { outputs: decodeTensorMap(r.outputs), gradients: decodeTensorMap(r.gradients) };
  }

  async jvp(req: JvpRequest, o?: CallOptions): Promise<JvpResponse> {
    const r = await this.postTensors('/v1/jvp', req, { tangents: encodeTensorMap(req.tangents, this.enc), of: req.of }, o);
    return { outputs: decodeTensorMap(r.outputs), tangents: decodeTensorMap(r.tangents) };
  }

  async jacobian(req: JacobianRequest, o?: CallOptions): Promise<JacobianResponse> {
    const r = await this.postTensors('/v1/jacobian', req, { of: req.of, wrt: req.wrt, mode: req.mode }, o);
    return { outputs: decodeTensorMap(r.outputs), jacobians: decodeTensorMap2(r.jacobians), mode: r.mode as JacobianResponse['mode'] };
  }

  async hvp(req: HvpRequest, o?: CallOptions): Promise<HvpResponse> {
    const r = await this.postTensors('/v1/hvp', req, { of: req.of, vectors: encodeTensorMap(req.vectors, this.enc) }, o);
    return { outputs: decodeTensorMap(r.outputs), gradients: decodeTensorMap(r.gradients), hvp: decodeTensorMap(r.hvp) };
  }

  async hessian(req: HessianRequest, o?: CallOptions): Promise<HessianResponse> {
    const r = await this.postTensors('/v1/hessian', req, { of: req.of, wrt: req.wrt }, o);
    return { outputs: decodeTensorMap(r.outputs), hessians: decodeTensorMap2(r.hessians) };
  }

  async gradcheck(req: GradcheckRequest, o?: CallOptions): Promise<GradcheckResponse> {
    const body = { graph: this.encodeGraph(req.graph), inputs: encodeTensorMap(req.inputs, this.enc), of: req.of, wrt: req.wrt, eps: req.eps, atol: req.atol, rtol: req.rtol };
    const r = await this.request('POST', '/v1/gradcheck', body, o);
    const perInput: GradcheckResponse['perInput'] = {};
    for (const [k, v] of Object.entries((r.perInput ?? {}) as Record<string, Record<string, unknown>>)) {
      perInput[k] = { ok: v.ok === true, maxAbsError: num(v.maxAbsError), maxRelError: num(v.maxRelError) };
    }
    return { ok: r.ok === true, maxAbsError: num(r.maxAbsError), maxRelError: num(r.maxRelError), perInput };
  }

  /** Symbolic differentiation: the returned graph can be evaluated or transformed again. */
  async transform(req: TransformRequest, o?: CallOptions): Promise<TransformResponse> {
    const r = await this.request('POST', '/v1/transform', { ...req, graph: this.encodeGraph(req.graph) }, o);
    return { graph: r.graph as WireGraph };
  }

  /** Shape inference and cost estimate; nothing is executed. */
  async shapes(req: ShapesRequest, o?: CallOptions): Promise<ShapesResponse> {
    const inputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(req.inputs ?? {})) {
      const spec = v as { shape?: unknown; data?: unknown; b64?: unknown };
      const dataless = spec !== null && typeof spec === 'object' && 'shape' in spec && spec.data === undefined && spec.b64 === undefined;
      inputs[k] = dataless ? spec : encodeTensor(v as Parameters<typeof encodeTensor>[0], this.enc);
    }
    const r = await this.request('POST', '/v1/shapes', { graph: this.encodeGraph(req.graph), inputs }, o);
    return { values: r.values as ShapesResponse['values'], flops: num(r.flops), peakBytes: num(r.peakBytes) };
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

  private encodeGraph(g: GraphSpec): WireGraph {
    if (g.constants === undefined) return g as WireGraph;
    return { ...g, constants: encodeTensorMap(g.constants, this.enc) } as WireGraph;
  }

  private postTensors(path: string, req: { graph: GraphSpec; inputs?: EvaluateRequest['inputs']; encoding?: Encoding }, extra: Record<string, unknown>, o?: CallOptions) {
    const body = {
      graph: this.encodeGraph(req.graph),
      inputs: encodeTensorMap(req.inputs ?? {}, this.enc),
      ...extra,
      encoding: req.encoding ?? this.opts.responseEncoding ?? 'b64',
    };
    return this.request('POST', path, body, o);
  }

  private async health(path: string, o?: CallOptions): Promise<boolean> {
    return this.send('GET', path, undefined, o, async (res) => {
      await res.body?.cancel();
      return res.status === 200;
    }, [503]);
  }

  private async request(method: string, path: string, body: unknown, o?: CallOptions): Promise<Record<string, unknown>> {
    const { status, text } = await this.send(method, path, body, o, async (res) => ({ status: res.status, text: await res.text() }));
    try {
      const v: unknown = JSON.parse(text);
      if (v !== null && typeof v === 'object') return v as Record<string, unknown>;
    } catch {
      // fall through to the typed error
    }
    throw new GradserveClientError({ code: 'INVALID_RESPONSE', status, detail: `${method} ${path}: expected a JSON object, got ${JSON.stringify(text.slice(0, 200))}`, body: text });
  }

  /**
   * One HTTP exchange; non-2xx answers (except `allowStatus`) become GradserveClientError. The body is read inside,
   * so the timeout and the caller's signal cover the whole download, not just the headers.
   */
  private async send<T>(method: string, path: string, body: unknown, o: CallOptions | undefined, read: (res: Response) => Promise<T>, allowStatus: number[] = []): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...this.opts.headers };
    let payload: string | Uint8Array | undefined;
    if (isRaw(body)) {
      payload = body.raw;
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
      let res: Response;
      try {
        res = await this.doFetch(this.baseUrl + path, { method, headers, body: payload as BodyInit | undefined, signal: ctrl.signal });
      } catch (e) {
        if (timedOut) throw new GradserveClientError({ code: 'TIMEOUT', status: 0, detail: `${method} ${path}: no answer within ${this.opts.timeoutMs} ms` }, { cause: e });
        if (ctrl.signal.aborted) throw new GradserveClientError({ code: 'ABORTED', status: 0, detail: `${method} ${path}: aborted by the caller` }, { cause: e });
        // Node's fetch says only "fetch failed"; the useful part (ECONNREFUSED, ENOTFOUND) is in its cause.
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const why = [(e as Error).message, cause?.code ?? cause?.message].filter(Boolean).join(': ');
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
