/**
 * How the client moves bytes. In browsers, Deno and anywhere else: `fetch`. In Node (the default there): node:http
 * with a keep-alive agent, which sends a framed body as its parts (the JSON header and the tensors' own bytes, no
 * concatenation) and reads an answer straight into one buffer of its Content-Length; measured on the MLP /v1/grad and
 * the seed-scale VJP, fetch took about twice as long for the same exchange. node:http is loaded on first use through a
 * dynamic import, so nothing here ties the module to Node.
 */

/** What the client reads of an answer (a subset of fetch's Response, which satisfies it). */
export interface WireAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** Drops the body unread. */
  discard(): Promise<void>;
}

export interface WireRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** A string, or byte parts sent one after the other. */
  body: string | Uint8Array[] | undefined;
  signal: AbortSignal;
}

export type Transport = (r: WireRequest) => Promise<WireAnswer>;

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export function fetchTransport(f: typeof fetch): Transport {
  return async (r) => {
    const body = Array.isArray(r.body) ? concat(r.body) : r.body;
    const res = await f(r.url, { method: r.method, headers: r.headers, body: body as BodyInit | undefined, signal: r.signal });
    return {
      status: res.status,
      ok: res.ok,
      statusText: res.statusText,
      headers: res.headers,
      text: () => res.text(),
      arrayBuffer: () => res.arrayBuffer(),
      discard: async () => {
        await res.body?.cancel();
      },
    };
  };
}

// ---- node:http, typed by the little this module uses (the client compiles without Node's types) ----

interface NodeIncoming {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
  on(event: 'data', f: (chunk: Uint8Array) => void): NodeIncoming;
  on(event: 'end' | 'aborted', f: () => void): NodeIncoming;
  on(event: 'error', f: (e: Error) => void): NodeIncoming;
  resume(): void;
  destroy(e?: Error): void;
}
interface NodeOutgoing {
  on(event: 'error', f: (e: Error) => void): void;
  cork(): void;
  uncork(): void;
  write(b: Uint8Array | string): boolean;
  end(b?: string): void;
}
interface NodeHttp {
  request(url: URL, opts: Record<string, unknown>, cb: (res: NodeIncoming) => void): NodeOutgoing;
  Agent: new (opts: Record<string, unknown>) => { destroy(): void };
}

/** True where node:http can be imported (Node, and runtimes that provide it under that name). */
export function hasNodeHttp(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof p?.versions?.node === 'string';
}

export interface NodeTransport {
  send: Transport;
  close(): void;
}

export function nodeTransport(): NodeTransport {
  let mods: Promise<{ http: NodeHttp; https: NodeHttp }> | undefined;
  const agents = new Map<string, { destroy(): void }>();
  const load = () => {
    // Specifiers in variables: bundlers and the browser type check leave them alone.
    const h = 'node:http';
    const hs = 'node:https';
    mods ??= Promise.all([import(h) as Promise<NodeHttp>, import(hs) as Promise<NodeHttp>]).then(([http, https]) => ({ http, https }));
    return mods;
  };
  const send: Transport = async (r) => {
    const { http, https } = await load();
    const url = new URL(r.url);
    const lib = url.protocol === 'https:' ? https : http;
    let agent = agents.get(url.protocol);
    if (agent === undefined) agents.set(url.protocol, (agent = new lib.Agent({ keepAlive: true })));
    const headers: Record<string, string> = { ...r.headers };
    if (r.body !== undefined) {
      let n = 0;
      if (typeof r.body === 'string') n = new TextEncoder().encode(r.body).byteLength;
      else for (const p of r.body) n += p.byteLength;
      headers['content-length'] = String(n);
    }
    return new Promise<WireAnswer>((resolve, reject) => {
      const req = lib.request(url, { method: r.method, headers, agent, signal: r.signal }, (res) => resolve(answerOf(res)));
      req.on('error', reject);
      if (typeof r.body === 'string') {
        req.end(r.body);
      } else if (r.body !== undefined) {
        req.cork();
        for (const p of r.body) req.write(p);
        req.uncork();
        req.end();
      } else {
        req.end();
      }
    });
  };
  return {
    send,
    close: () => {
      for (const a of agents.values()) a.destroy();
      agents.clear();
    },
  };
}

function answerOf(res: NodeIncoming): WireAnswer {
  const status = res.statusCode ?? 0;
  const header = (name: string): string | null => {
    const v = res.headers[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
  let read: Promise<ArrayBuffer> | undefined;
  // The whole body in one ArrayBuffer: sized by Content-Length when it is given, so every byte is copied once.
  const bytes = (): Promise<ArrayBuffer> => (read ??= new Promise<ArrayBuffer>((resolve, reject) => {
    const declared = Number(header('content-length') ?? Number.NaN);
    let out: Uint8Array | undefined = Number.isSafeInteger(declared) && declared >= 0 ? new Uint8Array(declared) : undefined;
    const chunks: Uint8Array[] = [];
    let at = 0;
    res.on('data', (c) => {
      if (out !== undefined && at + c.byteLength <= out.byteLength) out.set(c, at);
      else chunks.push(c);
      at += c.byteLength;
    });
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('the connection closed before the whole answer arrived')));
    res.on('end', () => {
      if (out === undefined || chunks.length > 0 || at !== out.byteLength) {
        const whole = out !== undefined && chunks.length === 0 ? out.subarray(0, at) : concat(out !== undefined ? [out.subarray(0, Math.min(at, out.byteLength)), ...chunks] : chunks);
        out = whole.byteOffset === 0 && whole.byteLength === whole.buffer.byteLength ? whole : whole.slice();
      }
      resolve(out.buffer as ArrayBuffer);
    });
  }));
  return {
    status,
    ok: status >= 200 && status < 300,
    statusText: res.statusMessage ?? '',
    headers: { get: header },
    arrayBuffer: bytes,
    text: async () => new TextDecoder().decode(await bytes()),
    discard: async () => {
      res.resume();
    },
  };
}
