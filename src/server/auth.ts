/**
 * Optional API keys: with GRADSERVE_API_KEYS set, every route except the health probes (and, when configured,
 * `/metrics` and the API documentation) needs `Authorization: Bearer <key>`. Keys are compared as SHA-256 digests with timingSafeEqual, and every key is always
 * compared, so neither the key's length nor which key matched leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { GradserveError } from '../errors.js';

const OPEN_ROUTES = new Set(['/v2/health/live', '/v2/health/ready']);

export interface AuthOptions {
  /** `/metrics` open (GRADSERVE_PUBLIC_METRICS). */
  publicMetrics?: boolean;
  /** `/docs` (and its assets), `/openapi.json` and the `/playground` page open (GRADSERVE_PUBLIC_DOCS). */
  publicDocs?: boolean;
}

function isOpen(url: string, o: AuthOptions): boolean {
  if (OPEN_ROUTES.has(url)) return true;
  if (o.publicMetrics === true && url === '/metrics') return true;
  if (o.publicDocs !== true) return false;
  return url === '/openapi.json' || url === '/docs' || url.startsWith('/docs/') || url === '/playground' || url.startsWith('/playground/');
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function keyMatches(presented: string, keys: Buffer[]): boolean {
  const d = digest(presented);
  let ok = false;
  for (const k of keys) ok = timingSafeEqual(d, k) || ok;
  return ok;
}

export function installAuth(app: FastifyInstance, apiKeys: string[], opts: AuthOptions = {}): void {
  if (apiKeys.length === 0) return;
  const keys = apiKeys.map(digest);
  app.addHook('onRequest', async (req, reply) => {
    const url = req.url.split('?')[0]!;
    if (isOpen(url, opts)) return;
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    if (m === null || !keyMatches(m[1]!, keys)) {
      reply.header('WWW-Authenticate', 'Bearer realm="gradserve"');
      throw new GradserveError('UNAUTHORIZED', m === null ? 'this server requires an API key: send Authorization: Bearer <key>' : 'the API key is not valid');
    }
  });
}
