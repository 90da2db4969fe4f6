/**
 * The three models of bench/models/models.mjs, written once with GraphBuilder so the benchmark and the test
 * (test/engine/models.test.ts, at small sizes) run the same graphs. Each model is a function of the GraphBuilder class
 * (the benchmark passes dist's, the test src's), a size and a datatype; it returns the graph (one scalar output,
 * `loss`), the shapes of its inputs and the names to differentiate (every parameter and the input `x`).
 *
 * torch_models.py builds the same three models in PyTorch from the same tensors; keep the two in step.
 */

/** LeNet-style CNN: conv 5x5 (pad 2) -> relu -> max_pool 2 -> conv 5x5 -> relu -> max_pool 2 -> flatten -> linear x3. */
export function lenet(GraphBuilder, { N = 64, H = 28, C1 = 6, C2 = 16, F1 = 120, F2 = 84, classes = 10 } = {}, dtype = 'FP32') {
  const b = new GraphBuilder();
  const flat = C2 * (((H >> 1) - 4) >> 1) ** 2;
  const shapes = {
    x: [N, 1, H, H], labels: [N],
    w1: [C1, 1, 5, 5], b1: [C1], w2: [C2, C1, 5, 5], b2: [C2],
    fw1: [flat, F1], fb1: [F1], fw2: [F1, F2], fb2: [F2], fw3: [F2, classes], fb3: [classes],
  };
  const v = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, b.input(k, s, k === 'labels' ? 'INT64' : dtype)]));
  const c1 = v.x.conv(v.w1, { bias: v.b1, pads: 2 }).relu().maxPool([2, 2]);
  const c2 = c1.conv(v.w2, { bias: v.b2 }).relu().maxPool([2, 2]);
  const f0 = c2.reshape([N, flat]);
  const f1 = f0.matmul(v.fw1).add(v.fb1).relu();
  const f2 = f1.matmul(v.fw2).add(v.fb2).relu();
  const logits = f2.matmul(v.fw3).add(v.fb3);
  const graph = b.output(logits.softmaxCrossEntropy(v.labels).as('loss')).build();
  return { graph, shapes, dtypes: { labels: 'INT64' }, classes, wrt: Object.keys(shapes).filter((k) => k !== 'labels') };
}

/** ResNet basic block: conv3x3 -> batch_norm (training) -> relu -> conv3x3 -> batch_norm -> add x -> relu; loss mean(y²). */
export function resblock(GraphBuilder, { N = 32, C = 64, H = 32 } = {}, dtype = 'FP32') {
  const b = new GraphBuilder();
  const shapes = {
    x: [N, C, H, H],
    w1: [C, C, 3, 3], g1: [C], be1: [C], m1: [C], v1: [C],
    w2: [C, C, 3, 3], g2: [C], be2: [C], m2: [C], v2: [C],
  };
  const v = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, b.input(k, s, dtype)]));
  const h = v.x.conv(v.w1, { pads: 1 }).batchNorm(v.g1, v.be1, v.m1, v.v1, { training: true }).relu();
  const y = h.conv(v.w2, { pads: 1 }).batchNorm(v.g2, v.be2, v.m2, v.v2, { training: true }).add(v.x).relu();
  const graph = b.output(y.square().mean().as('loss')).build();
  return { graph, shapes, dtypes: {}, wrt: ['x', 'w1', 'g1', 'be1', 'w2', 'g2', 'be2'] };
}

/**
 * Pre-norm transformer encoder block: x1 = x + attn(layer_norm(x)), y = x1 + mlp(layer_norm(x1)); attention with
 * `heads` heads over separate Q, K, V projections (softmax(q kᵀ / sqrt(d)) v), MLP D -> 4D -> D with exact GELU;
 * loss mean(y²).
 */
export function transformer(GraphBuilder, { B = 8, T = 128, D = 256, heads = 4, hidden = 1024 } = {}, dtype = 'FP32') {
  const b = new GraphBuilder();
  const dh = D / heads;
  const shapes = {
    x: [B, T, D], ln1g: [D], ln1b: [D],
    wq: [D, D], bq: [D], wk: [D, D], bk: [D], wv: [D, D], bv: [D], wo: [D, D], bo: [D],
    ln2g: [D], ln2b: [D], w1: [D, hidden], c1: [hidden], w2: [hidden, D], c2: [D],
  };
  const v = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, b.input(k, s, dtype)]));
  const h = v.x.layerNorm({ scale: v.ln1g, bias: v.ln1b });
  const split = (t) => t.reshape([B, T, heads, dh]).transpose([0, 2, 1, 3]); // [B, heads, T, dh]
  const q = split(h.matmul(v.wq).add(v.bq));
  const k = h.matmul(v.wk).add(v.bk).reshape([B, T, heads, dh]).transpose([0, 2, 3, 1]); // [B, heads, dh, T]
  const val = split(h.matmul(v.wv).add(v.bv));
  const p = q.matmul(k).mul(1 / Math.sqrt(dh)).softmax(-1);
  const att = p.matmul(val).transpose([0, 2, 1, 3]).reshape([B, T, D]);
  const x1 = v.x.add(att.matmul(v.wo).add(v.bo));
  const h2 = x1.layerNorm({ scale: v.ln2g, bias: v.ln2b });
  const y = x1.add(h2.matmul(v.w1).add(v.c1).gelu().matmul(v.w2).add(v.c2));
  const graph = b.output(y.square().mean().as('loss')).build();
  return { graph, shapes, dtypes: {}, wrt: Object.keys(shapes) };
}

export const MODELS = { lenet, resblock, transformer };

/**
 * Deterministic inputs for a model: uniform weights scaled by 1/sqrt(fan-in), unit-scale x, batch-norm scales near 1,
 * biases within +-0.1, running statistics 0 and 1, class labels i mod classes. Float64Arrays (the caller narrows them
 * to FP32) and a BigInt64Array for the labels.
 */
export function modelInputs(model, seed = 7) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const out = {};
  for (const [name, shape] of Object.entries(model.shapes)) {
    const n = shape.reduce((a, d) => a * d, 1);
    if (model.dtypes[name] === 'INT64') {
      out[name] = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % model.classes));
      continue;
    }
    // fan-in of a weight: every axis but the output one (conv: axis 0 is out; matmul [in, out]: axis 0 is in)
    const fanIn = shape.length === 4 && name !== 'x' ? n / shape[0] : shape.length === 2 ? shape[0] : 1;
    const isGain = /^(g\d|ln\dg)$/.test(name);
    const isVar = /^v\d$/.test(name);
    const isMean = /^m\d$/.test(name);
    const isBias = shape.length === 1 && !isGain && !isVar && !isMean;
    out[name] = Float64Array.from({ length: n }, () => (isVar ? 1 : isMean ? 0 : isGain ? 1 + 0.2 * rand() : isBias ? 0.2 * rand() : (2 * rand()) / Math.sqrt(fanIn)));
  }
  return out;
}
