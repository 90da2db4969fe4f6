/** POST /v1/render: DOT and SVG pictures of a graph, of its derivative graph, of a model; size limit; errors. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { makeApp } from './helpers.js';

/** The seed's linear layer with a loss: y = x·w, loss = sum(y); `extra` is a second output no gradient needs. */
const graph = {
  inputs: { x: { shape: [1, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'loss', op: 'sum', inputs: ['y'] },
    { name: 'extra', op: 'tanh', inputs: ['x'] },
  ],
  outputs: ['y', 'extra'],
};

let dir: string;
let app: GradserveApp;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gradserve-render-'));
  writeFileSync(path.join(dir, 'linear.json'), JSON.stringify({ ...graph, inputs: { x: { shape: [null, 2], datatype: 'FP64' }, w: { shape: [2, 3], datatype: 'FP64' } } }));
  app = await makeApp({ modelRepository: dir });
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const render = (payload: unknown, format?: string, a: GradserveApp = app) =>
  a.inject({ method: 'POST', url: `/v1/render${format === undefined ? '' : `?format=${format}`}`, payload: payload as object });

/** A DOT text's drawn values by name: node id, label text, class. */
function valuesOf(dot: string): Map<string, { id: string; label: string; cls: string }> {
  const out = new Map<string, { id: string; label: string; cls: string }>();
  for (const m of dot.matchAll(/^\s*(v\d+) \[label=<(.*)>, .*id="value:([^"]*)", class="([^"]*)"/gm)) {
    out.set(m[3]!, { id: m[1]!, label: m[2]!, cls: m[4]! });
  }
  return out;
}

/** Edges `from -> to` by value name, with their attribute text. */
function edgesOf(dot: string): { from: string; to: string; attrs: string }[] {
  const byId = new Map([...valuesOf(dot)].map(([name, v]) => [v.id, name]));
  return [...dot.matchAll(/^\s*(v\d+) -> (v\d+)(.*);$/gm)].map((m) => ({ from: byId.get(m[1]!)!, to: byId.get(m[2]!)!, attrs: m[3]! }));
}

describe('POST /v1/render ?format=dot', () => {
  it('draws a graph: every value labelled with its op or kind, name, shape and datatype', async () => {
    const res = await render({ graph }, 'dot');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/vnd.graphviz; charset=utf-8');
    expect(res.body).toMatch(/^digraph gradserve \{/);
    const v = valuesOf(res.body);
    expect([...v.keys()].sort()).toEqual(['extra', 'loss', 'w', 'x', 'y']);
    expect(v.get('y')!.label).toContain('<b>matmul</b>');
    expect(v.get('y')!.label).toContain('[1, 3] FP32');
    expect(v.get('loss')!.label).toContain('<b>sum</b>');
    expect(v.get('loss')!.label).toContain('[] FP32');
    expect(v.get('x')!.label).toContain('<b>input</b>');
    expect(v.get('x')!.label).toContain('[1, 2] FP32');
    expect(v.get('x')!.cls).toBe('forward input');
    expect(v.get('y')!.cls).toBe('forward op output');
    expect(v.get('loss')!.cls).toBe('forward op');
    expect(edgesOf(res.body).map((e) => `${e.from}->${e.to}`).sort()).toEqual(['w->y', 'x->extra', 'x->y', 'y->loss']);
    expect(res.body).not.toContain('cluster_derivative');
  });

  it('tells parameters from inputs', async () => {
    const v = valuesOf((await render({ graph, parameters: ['w'] }, 'dot')).body);
    expect(v.get('w')!.cls).toBe('forward parameter');
    expect(v.get('w')!.label).toContain('<b>parameter</b>');
    expect(v.get('x')!.cls).toBe('forward input');
  });

  it('draws the derivative graph beside the forward graph, linked by the forward values it reads', async () => {
    const res = await render({ graph, transform: 'grad', of: 'loss', wrt: ['x', 'w'] }, 'dot');
    expect(res.statusCode).toBe(200);
    const dot = res.body;
    expect(dot).toContain('subgraph cluster_forward');
    expect(dot).toContain('subgraph cluster_derivative');
    expect(dot).toContain('derivative graph: grad of loss with respect to x, w');
    const v = valuesOf(dot);
    // the gradients are derivative outputs, with the shapes of x and w
    expect(v.get('grad:x')!.cls).toBe('derivative op output');
    expect(v.get('grad:x')!.label).toContain('[1, 2] FP32');
    expect(v.get('grad:w')!.label).toContain('[2, 3] FP32');
    const derivativeOps = [...v.values()].filter((x) => x.cls.startsWith('derivative op')).map((x) => /<b>([^<]*)<\/b>/.exec(x.label)![1]);
    expect(derivativeOps).toContain('matmul_t');
    expect(derivativeOps).toContain('ones_like');
    // forward values read by derivative nodes are linked by shared (dashed) edges: w and x by the two matmul_t
    const shared = edgesOf(dot).filter((e) => e.attrs.includes('class="shared"'));
    expect(shared.length).toBeGreaterThan(0);
    for (const e of shared) {
      expect(v.get(e.from)!.cls).toMatch(/^forward /);
      expect(v.get(e.to)!.cls).toMatch(/^derivative /);
      expect(e.attrs).toContain('style=dashed');
    }
    const sharedPairs = shared.map((e) => `${e.from}->${v.get(e.to)!.label.match(/<b>([^<]*)<\/b>/)![1]}`);
    expect(sharedPairs).toContain('w->matmul_t');
    expect(sharedPairs).toContain('x->matmul_t');
    expect(sharedPairs).toContain('loss->ones_like');
  });

  it('leaves out what the transform pruned, and says so', async () => {
    const dot = (await render({ graph, transform: 'grad', of: 'loss', wrt: ['w'] }, 'dot')).body;
    const v = valuesOf(dot);
    expect(v.has('extra')).toBe(false);
    expect(v.has('grad:x')).toBe(false);
    expect(v.has('grad:w')).toBe(true);
    expect(dot).toContain('1 forward value the derivative does not need left out');
  });

  it('draws a jvp: the tangent inputs on the derivative side', async () => {
    const res = await render({ graph, transform: 'jvp', wrt: ['x'], of: ['y'] }, 'dot');
    expect(res.statusCode).toBe(200);
    const v = valuesOf(res.body);
    expect(v.get('tangent:x')!.cls).toBe('derivative input');
    expect(v.get('tangent:y')!.cls).toBe('derivative op output');
    expect(v.get('tangent:y')!.label).toContain('[1, 3] FP32');
  });

  it('tells a forward node the transform renamed from the derivative output that took its name', async () => {
    // a graph that already has a node `grad:w` (a gradient graph, differentiated again)
    const g = { inputs: graph.inputs, nodes: [...graph.nodes.slice(0, 2), { name: 'grad:w', op: 'mul', inputs: ['loss', 'loss'] }], outputs: ['grad:w'] };
    const res = await render({ graph: g, transform: 'grad', of: 'grad:w', wrt: ['w'] }, 'dot');
    expect(res.statusCode).toBe(200);
    const v = valuesOf(res.body);
    expect(v.get('grad:w~1')!.cls).toBe('forward op output');
    expect(v.get('grad:w~1')!.label).toContain('<b>mul</b>');
    expect(v.get('grad:w')!.cls).toBe('derivative op output');
    expect(v.get('grad:w')!.label).toContain('[2, 3] FP32');
    expect(res.body).not.toContain('left out');
  });

  it('draws a model by name, and a vjp of it', async () => {
    const res = await render({ model: 'linear', transform: 'vjp', of: ['y'], wrt: ['w'] }, 'dot');
    expect(res.statusCode).toBe(200);
    const v = valuesOf(res.body);
    expect(v.get('cotangent:y')!.cls).toBe('derivative input');
    expect(v.get('cotangent:y')!.label).toContain('[?, 3] FP64');
    expect(v.get('grad:w')!.label).toContain('[2, 3] FP64');
  });
});

describe('POST /v1/render (SVG)', () => {
  it('lays out a graph as SVG with the labels as text', async () => {
    const res = await render({ graph });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(res.body.startsWith('<svg')).toBe(true);
    expect(res.body).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(res.body).toMatch(/<text[^>]*>matmul<\/text>/);
    expect(res.body).toMatch(/<text[^>]*>\[1, 3\] FP32<\/text>/);
    expect(res.body).toContain('id="value:y"');
    expect(res.body).toContain('class="node forward op output"');
  });

  it('lays out a transform with both clusters and the shared edges', async () => {
    const res = await render({ graph, transform: 'vjp', of: ['y'], wrt: ['w'] });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<title>cluster_forward</title>');
    expect(res.body).toContain('<title>cluster_derivative</title>');
    expect(res.body).toMatch(/<text[^>]*>matmul_t<\/text>/);
    expect(res.body).toContain('class="edge shared"');
    expect(res.body).toContain('id="value:grad:w"');
  });

  it('lays out a model by name', async () => {
    const res = await render({ model: 'linear' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/<text[^>]*>\[\?, 3\] FP64<\/text>/);
  });

  it('escapes names: the SVG stays well-formed text', async () => {
    const odd = { inputs: { 'a<b&"c': { shape: [2] } }, nodes: [{ name: 'n>1', op: 'neg', inputs: ['a<b&"c'] }] };
    const res = await render({ graph: odd });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('a&lt;b&amp;&quot;c');
    expect(res.body).not.toContain('a<b');
    const dot = (await render({ graph: odd }, 'dot')).body;
    expect(dot).toContain('id="value:a<b&\\"c"');
  });

  it('refuses a picture over GRADSERVE_RENDER_MAX_NODES with 413 TOO_LARGE naming the limit; DOT still answers', async () => {
    const small = await makeApp({ renderMaxNodes: 4 });
    try {
      const res = await render({ graph }, undefined, small);
      expect(res.statusCode).toBe(413);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const p = res.json();
      expect(p).toMatchObject({ code: 'TOO_LARGE', status: 413, errors: [{ path: 'graph.nodes' }] });
      expect(p.detail).toContain('5 values');
      expect(p.detail).toContain('limit of 4');
      expect(p.detail).toContain('GRADSERVE_RENDER_MAX_NODES');
      expect((await render({ graph }, 'dot', small)).statusCode).toBe(200);
      // a graph at the limit is drawn
      const four = { ...graph, nodes: graph.nodes.slice(0, 2), outputs: ['loss'] };
      expect((await render({ graph: four }, undefined, small)).statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('POST /v1/render: errors are problem+json with the path they point at', () => {
  const cases: [string, unknown, string | undefined, number, string, string][] = [
    ['neither graph nor model', {}, undefined, 400, 'INVALID_REQUEST', 'graph'],
    ['a transform without wrt', { graph, transform: 'grad', of: 'loss' }, undefined, 400, 'INVALID_REQUEST', 'wrt'],
    ['grad with a list as of', { graph, transform: 'grad', of: ['loss'], wrt: ['w'] }, undefined, 400, 'INVALID_REQUEST', 'of'],
    ['wrt without a transform', { graph, wrt: ['w'] }, undefined, 400, 'INVALID_REQUEST', 'wrt'],
    ['an unknown transform', { graph, transform: 'hessian', of: 'loss', wrt: ['w'] }, undefined, 400, 'INVALID_REQUEST', 'transform'],
    ['an unknown format', { graph }, 'png', 400, 'INVALID_REQUEST', 'format'],
    ['an unknown op', { graph: { nodes: [{ name: 'a', op: 'nope', inputs: [] }] } }, undefined, 422, 'UNKNOWN_OP', 'graph.nodes[0].op'],
    ['an unknown wrt value', { graph, transform: 'grad', of: 'loss', wrt: ['q'] }, undefined, 422, 'UNKNOWN_VALUE', 'wrt[0]'],
    ['a gradient of a non-scalar', { graph, transform: 'grad', of: 'y', wrt: ['w'] }, undefined, 422, 'NOT_SCALAR', 'of'],
    ['an unknown parameter', { graph, parameters: ['q'] }, undefined, 422, 'UNKNOWN_VALUE', 'parameters[0]'],
    ['an unknown model', { model: 'nope' }, undefined, 404, 'NOT_FOUND', ''],
  ];
  for (const [what, body, format, status, code, at] of cases) {
    it(`${what}: ${status} ${code}${at === '' ? '' : ` at ${at}`}`, async () => {
      const res = await render(body, format);
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const p = res.json();
      expect(p.code).toBe(code);
      if (at !== '') expect(p.errors?.map((e: { path: string }) => e.path)).toContain(at);
    });
  }
});

describe('OpenAPI', () => {
  it('documents POST /v1/render: body, format, SVG and DOT answers, problem answers', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/v1/render'].post;
    expect(op.requestBody.content['application/json'].schema).toBeDefined();
    expect(op.parameters.map((p: { name: string }) => p.name)).toContain('format');
    expect(Object.keys(op.responses['200'].content).sort()).toEqual(['image/svg+xml', 'text/vnd.graphviz']);
    expect(op.responses['413'].content['application/problem+json']).toBeDefined();
  });
});
