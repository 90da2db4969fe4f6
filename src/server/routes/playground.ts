/**
 * GET /playground: a static page that calls this server's API through the TypeScript client (API.md "Render and the
 * playground"). Everything it loads comes from this server: the page (playground/ in the package), the client as ES
 * modules (dist/client, plus the one module it imports from dist/tensor), nothing from elsewhere.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { warmUpLayout } from '../render/svg.js';

const root = (rel: string): string => fileURLToPath(new URL(`../../../${rel}`, import.meta.url));

/** Where the page's files are: playground/ beside dist/ (src/server/routes -> dist/server/routes -> package root). */
export const PLAYGROUND_DIR = root('playground/');
export const CLIENT_DIR = root('dist/client/');
export const TENSOR_DIR = root('dist/tensor/');

export async function playgroundRoutes(app: FastifyInstance): Promise<void> {
  // Graphviz (about 30 MB resident once loaded) loads on the first picture; a page load starts it, so that the page's
  // first picture does not wait for it while a server nobody draws with never pays for it.
  app.addHook('onRequest', (req, _reply, done) => {
    if (req.url === '/playground' || req.url === '/playground/') {
      warmUpLayout().catch((err: unknown) => req.log.warn({ err }, 'Graphviz failed to load'));
    }
    done();
  });
  // Run from src/ (tests) the compiled client may be missing: the page then says so instead of failing to load.
  await app.register(fastifyStatic, { root: PLAYGROUND_DIR, prefix: '/playground/', decorateReply: false, index: 'index.html', cacheControl: false });
  await app.register(fastifyStatic, {
    root: CLIENT_DIR,
    prefix: '/playground/client/',
    decorateReply: false,
    cacheControl: false,
    allowedPath: (p: string) => p.endsWith('.js'),
  });
  // The client's only import outside its folder (datatype tables shared with the server).
  await app.register(fastifyStatic, {
    root: TENSOR_DIR,
    prefix: '/playground/tensor/',
    decorateReply: false,
    cacheControl: false,
    allowedPath: (p: string) => p === '/dtype.js',
  });
  app.get('/playground', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/playground/', 302));
  if (!existsSync(CLIENT_DIR)) app.log.warn({ dir: CLIENT_DIR }, 'the playground needs the compiled client (npm run build)');
}
