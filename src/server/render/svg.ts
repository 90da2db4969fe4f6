/**
 * DOT -> SVG with Graphviz compiled to WebAssembly (@hpcc-js/wasm-graphviz). The module (about 1 MB of JavaScript
 * with the wasm inlined, about 30 MB resident once loaded) is loaded on the first render only, so a server that never
 * draws never pays for it.
 * Layout runs synchronously on the event loop: /v1/render bounds the size of what it lays out (renderMaxNodes).
 */
import type { Graphviz } from '@hpcc-js/wasm-graphviz';

let loading: Promise<Graphviz> | undefined;

function graphviz(): Promise<Graphviz> {
  loading ??= import('@hpcc-js/wasm-graphviz').then((m) => m.Graphviz.load()).catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/** Loads Graphviz ahead of a picture (a request for the playground page starts it). */
export async function warmUpLayout(): Promise<void> {
  const g = await graphviz();
  // What pictures use (clusters, HTML-like labels, links that do not rank): Graphviz's first use of each is slower.
  g.dot('digraph { subgraph cluster_a { a [label=<<b>a</b><br/><font point-size="9">[1] FP32</font>>, shape=box, style="rounded,filled"] } subgraph cluster_b { b } a -> b [style=dashed, constraint=false] }');
}

/** The SVG document of a DOT text, without the XML prolog and doctype (so it can be inlined in HTML as it is). */
export async function layoutSvg(dot: string): Promise<string> {
  const svg = (await graphviz()).dot(dot, 'svg');
  const start = svg.indexOf('<svg');
  return start > 0 ? svg.slice(start) : svg;
}
