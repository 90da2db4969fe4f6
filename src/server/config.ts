/**
 * Server configuration: defaults, environment variables and the matching CLI flags (docs/configuration.md lists them).
 * One table drives all three so a setting can never exist in one place and not the others.
 */
import os from 'node:os';

/**
 * V8's initial old-generation size for the server, in MB (a flag node takes only at start). V8 sizes the old
 * generation's limit from the live heap: about 22 MB for a warm server, so a limit near 48 MB. A server that had
 * answered some large JSON or b64 requests then made a full collection every ~80 ms under a stream of binary MLP
 * requests (11-13 a second, each holding the event loop several ms; `--trace-incremental-marking` showed V8's task
 * starting each one at 22 of 48 MB), against none in a fresh server; with the old generation starting at 64 or 128 MB,
 * none in either (bench/http/README.md, "Latest run"). The likely cause is the ArrayBuffer memory allocated between
 * collections (socket chunks, small results) being weighed against that headroom once the young generation has grown.
 * This is a limit, not memory taken: the heap only grows as far as garbage accumulates before a collection.
 */
export const HEAP_FLAG = '--initial-old-space-size=128';

export interface ServerConfig {
  host: string;
  port: number;
  /** Folder with one graph JSON file per model for the /v2/models endpoints; none when undefined. */
  modelRepository: string | undefined;
  bodyLimitBytes: number;
  /** Largest JSON or b64 answer (estimated from the plan before anything runs). */
  responseLimitBytes: number;
  /** Largest answer in binary framing. */
  binaryResponseLimitBytes: number;
  /** Per-request memory budget, checked against the engine's cost estimate before anything runs. */
  requestMemoryBytes: number;
  /** Server-wide memory budget shared by all running requests (admission control). */
  serverMemoryBytes: number;
  /** How long a request may wait for server memory before it gets 503 OVERLOADED. */
  admissionWaitMs: number;
  maxNodes: number;
  /** Most values (nodes, inputs, constants) /v1/render lays out as SVG. */
  renderMaxNodes: number;
  maxTensorElements: number;
  requestTimeoutMs: number;
  /** Bound on finishing in-flight requests at shutdown. */
  shutdownTimeoutMs: number;
  /** libuv thread pool size: the native kernels run there. */
  workers: number;
  /** Threads per BLAS call (OPENBLAS_NUM_THREADS); 0 keeps the library's default (all cores). */
  blasThreads: number;
  /** Free native buffers kept for reuse by program runs (the pool of intermediates). */
  poolBytes: number;
  /** After this long without requests, cached native buffers and free heap pages go back to the system; 0: never. */
  idleTrimMs: number;
  apiKeys: string[];
  /** `/metrics` needs no API key (for a Prometheus scrape). */
  publicMetrics: boolean;
  /** `/docs` and `/openapi.json` need no API key. */
  publicDocs: boolean;
  /** A second port serving only `/metrics`, never behind API keys; 0: none. */
  metricsPort: number;
  /** Origins allowed to call from a browser (CORS); `*` for any; none: CORS off. */
  corsOrigins: string[];
  /** Compress answers for clients that accept it (gzip, deflate; never binary frames). */
  compression: boolean;
  logLevel: string;
  prettyLogs: boolean;
}

type Kind = 'string' | 'int' | 'bytes' | 'list' | 'bool';

interface Setting {
  key: keyof ServerConfig;
  env: string[];
  flag: string;
  kind: Kind;
  doc: string;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export function defaultConfig(): ServerConfig {
  const cpus = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  // Leave half of the machine to the OS, the JS heap and response buffers; never assume more than 8 GiB.
  const server = Math.min(8 * GiB, Math.floor(os.totalmem() / 2));
  return {
    host: '0.0.0.0',
    port: 8080,
    modelRepository: undefined,
    bodyLimitBytes: 256 * MiB,
    responseLimitBytes: 256 * MiB,
    binaryResponseLimitBytes: 4 * GiB,
    requestMemoryBytes: Math.min(4 * GiB, server),
    serverMemoryBytes: server,
    admissionWaitMs: 2000,
    maxNodes: 10_000,
    renderMaxNodes: 150,
    maxTensorElements: 2 ** 28,
    requestTimeoutMs: 60_000,
    shutdownTimeoutMs: 10_000,
    workers: Math.max(4, cpus),
    blasThreads: 0,
    poolBytes: 256 * MiB,
    idleTrimMs: 5000,
    apiKeys: [],
    publicMetrics: false,
    publicDocs: false,
    metricsPort: 0,
    corsOrigins: [],
    compression: true,
    logLevel: 'info',
    prettyLogs: false,
  };
}

export const SETTINGS: Setting[] = [
  { key: 'host', env: ['GRADSERVE_HOST', 'HOST'], flag: '--host', kind: 'string', doc: 'Interface to listen on.' },
  { key: 'port', env: ['GRADSERVE_PORT', 'PORT'], flag: '--port', kind: 'int', doc: 'TCP port.' },
  { key: 'modelRepository', env: ['GRADSERVE_MODEL_REPOSITORY'], flag: '--model-repository', kind: 'string', doc: 'Folder of `<model>.json` graph files served under `/v2/models`.' },
  { key: 'bodyLimitBytes', env: ['GRADSERVE_BODY_LIMIT'], flag: '--body-limit', kind: 'bytes', doc: 'Largest request body (413 `TOO_LARGE` above).' },
  { key: 'responseLimitBytes', env: ['GRADSERVE_RESPONSE_LIMIT'], flag: '--response-limit', kind: 'bytes', doc: 'Largest JSON or b64 answer, estimated from the result shapes before anything runs (413 `TOO_LARGE`, suggesting `"encoding": "binary"`); at most 496 MiB.' },
  { key: 'binaryResponseLimitBytes', env: ['GRADSERVE_BINARY_RESPONSE_LIMIT'], flag: '--binary-response-limit', kind: 'bytes', doc: 'Largest answer in binary framing (413 `TOO_LARGE` above).' },
  { key: 'requestMemoryBytes', env: ['GRADSERVE_REQUEST_MEMORY'], flag: '--request-memory', kind: 'bytes', doc: 'Per-request memory budget, checked against the cost estimate before executing (413 `TOO_LARGE`).' },
  { key: 'serverMemoryBytes', env: ['GRADSERVE_SERVER_MEMORY'], flag: '--server-memory', kind: 'bytes', doc: 'Server-wide memory budget shared by running requests (admission control, 503 `OVERLOADED`).' },
  { key: 'admissionWaitMs', env: ['GRADSERVE_ADMISSION_WAIT_MS'], flag: '--admission-wait-ms', kind: 'int', doc: 'How long a request waits for server memory before 503 `OVERLOADED` with `Retry-After`.' },
  { key: 'maxNodes', env: ['GRADSERVE_MAX_NODES'], flag: '--max-nodes', kind: 'int', doc: 'Most nodes in one graph (413 `TOO_LARGE`).' },
  { key: 'renderMaxNodes', env: ['GRADSERVE_RENDER_MAX_NODES'], flag: '--render-max-nodes', kind: 'int', doc: 'Most values (nodes, inputs and constants) `POST /v1/render` lays out as SVG (413 `TOO_LARGE`; `?format=dot` is not limited by it).' },
  { key: 'maxTensorElements', env: ['GRADSERVE_MAX_TENSOR_ELEMENTS'], flag: '--max-tensor-elements', kind: 'int', doc: 'Most elements in any one tensor (413 `TOO_LARGE`).' },
  { key: 'requestTimeoutMs', env: ['GRADSERVE_REQUEST_TIMEOUT_MS'], flag: '--request-timeout-ms', kind: 'int', doc: 'Time limit per request; past it the run is cancelled with 504 `DEADLINE_EXCEEDED`.' },
  { key: 'shutdownTimeoutMs', env: ['GRADSERVE_SHUTDOWN_TIMEOUT_MS'], flag: '--shutdown-timeout-ms', kind: 'int', doc: 'On SIGTERM/SIGINT, how long in-flight requests get to finish; past it they are answered 503 `OVERLOADED` with `Retry-After` and the process exits.' },
  { key: 'workers', env: ['GRADSERVE_WORKERS', 'UV_THREADPOOL_SIZE'], flag: '--workers', kind: 'int', doc: 'Threads running native kernels (the libuv pool size).' },
  { key: 'blasThreads', env: ['GRADSERVE_BLAS_THREADS'], flag: '--blas-threads', kind: 'int', doc: 'Most threads per matrix product (sets OPENBLAS_NUM_THREADS); 0 keeps the library default, all cores. Small products, and products that start while another runs, use one thread (GRADSERVE_BLAS_ADAPTIVE=0: always this many).' },
  { key: 'poolBytes', env: ['GRADSERVE_POOL_BYTES'], flag: '--pool-bytes', kind: 'bytes', doc: 'Free native buffers kept for reuse by running graphs (intermediates live in native memory, freed at their last use into this pool); the same cap applies, separately, to recycled request bodies and results.' },
  { key: 'idleTrimMs', env: ['GRADSERVE_IDLE_TRIM_MS'], flag: '--idle-trim-ms', kind: 'int', doc: 'After this long without requests, the buffer pool and free heap pages are returned to the system (RSS falls back to its warm level); 0 never.' },
  { key: 'apiKeys', env: ['GRADSERVE_API_KEYS'], flag: '--api-keys', kind: 'list', doc: 'Comma-separated API keys; when set, every endpoint except health needs `Authorization: Bearer <key>`.' },
  { key: 'publicMetrics', env: ['GRADSERVE_PUBLIC_METRICS'], flag: '--public-metrics', kind: 'bool', doc: 'With API keys set, `/metrics` still needs none (a Prometheus scrape on the serving port).' },
  { key: 'publicDocs', env: ['GRADSERVE_PUBLIC_DOCS'], flag: '--public-docs', kind: 'bool', doc: 'With API keys set, `/docs` and `/openapi.json` still need none.' },
  { key: 'metricsPort', env: ['GRADSERVE_METRICS_PORT'], flag: '--metrics-port', kind: 'int', doc: 'Also serve `/metrics` (only) on this port, without API keys, e.g. for a scrape that the Service does not expose; 0: no second port.' },
  { key: 'corsOrigins', env: ['GRADSERVE_CORS_ORIGINS'], flag: '--cors-origins', kind: 'list', doc: 'Comma-separated origins allowed to call from a browser (CORS), or `*` for any; none: CORS off.' },
  { key: 'compression', env: ['GRADSERVE_COMPRESSION'], flag: '--compression', kind: 'bool', doc: 'Compress JSON answers of 1 KiB and more for clients that send Accept-Encoding gzip or deflate (never binary frames); `off` to disable.' },
  { key: 'logLevel', env: ['GRADSERVE_LOG_LEVEL', 'LOG_LEVEL'], flag: '--log-level', kind: 'string', doc: 'pino log level (`fatal` … `trace`, or `silent`).' },
  { key: 'prettyLogs', env: ['GRADSERVE_LOG_PRETTY'], flag: '--pretty', kind: 'bool', doc: 'Human-readable logs instead of JSON lines, through the optional package pino-pretty (a development dependency; elsewhere `npm install pino-pretty`); without it the logs stay JSON lines and a warning says why.' },
];

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 1024, mib: MiB, gib: GiB, tib: 1024 ** 4 };

/** "256MiB", "1.5 GB", "1048576" -> bytes. */
export function parseBytes(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a byte size: "${s}" (examples: 1048576, 256MiB, 2GiB)`);
  return Math.floor(Number(m[1]) * unit);
}

function parseValue(s: Setting, raw: string, from: string): unknown {
  switch (s.kind) {
    case 'string':
      return raw;
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${from}: expected a non-negative integer, got "${raw}"`);
      return n;
    }
    case 'bytes':
      try {
        return parseBytes(raw);
      } catch (e) {
        throw new Error(`${from}: ${(e as Error).message}`);
      }
    case 'list':
      return raw.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
    case 'bool':
      return !/^(0|false|no|off|)$/i.test(raw.trim());
  }
}

/** Environment first, then flags (`--port 9000` or `--port=9000`; `--pretty` alone for booleans). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = []): ServerConfig {
  const cfg = defaultConfig() as unknown as Record<string, unknown>;
  for (const s of SETTINGS) {
    const name = s.env.find((e) => env[e] !== undefined && env[e] !== '');
    if (name !== undefined) cfg[s.key] = parseValue(s, env[name]!, name);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const s = SETTINGS.find((x) => x.flag === flag);
    if (s === undefined) throw new Error(`unknown option ${flag} (see gradserve serve --help)`);
    let raw = inline;
    if (raw === undefined) {
      if (s.kind === 'bool') raw = 'true';
      else {
        raw = argv[++i];
        if (raw === undefined) throw new Error(`${flag} needs a value`);
      }
    }
    cfg[s.key] = parseValue(s, raw, flag);
  }
  return cfg as unknown as ServerConfig;
}

export function resolveConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  return { ...defaultConfig(), ...partial };
}
