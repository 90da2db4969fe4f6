// The "medium" request of the scale-out benchmark: the gradient of a two-layer tanh MLP's mean squared output with
// respect to both weight matrices, batch 64, 256 -> 256 -> 16, FP32 tensors in b64 both ways (~0.5 MB request).
// About 25 MFLOP per request: enough work that the service, not the proxy, is the bottleneck.

/** Deterministic values in [-scale, scale) (a small LCG), so every run sends the same bytes. */
function values(count, seed, scale) {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

const b64 = (shape, arr) => ({ shape, datatype: 'FP32', b64: Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).toString('base64') });

export function gradRequest({ batch = 64, dIn = 256, hidden = 256, dOut = 16 } = {}) {
  const graph = {
    inputs: {
      x: { shape: [null, dIn], datatype: 'FP32' },
      w1: { shape: [dIn, hidden], datatype: 'FP32' },
      w2: { shape: [hidden, dOut], datatype: 'FP32' },
    },
    nodes: [
      { name: 'a', op: 'matmul', inputs: ['x', 'w1'] },
      { name: 'h', op: 'tanh', inputs: ['a'] },
      { name: 'o', op: 'matmul', inputs: ['h', 'w2'] },
      { name: 'o2', op: 'square', inputs: ['o'] },
      { name: 'loss', op: 'mean', inputs: ['o2'] },
    ],
    outputs: ['loss'],
  };
  const body = JSON.stringify({
    graph,
    inputs: {
      x: b64([batch, dIn], values(batch * dIn, 1, 1)),
      w1: b64([dIn, hidden], values(dIn * hidden, 2, 1 / Math.sqrt(dIn))),
      w2: b64([hidden, dOut], values(hidden * dOut, 3, 1 / Math.sqrt(hidden))),
    },
    of: 'loss',
    wrt: ['w1', 'w2'],
    encoding: 'b64',
  });
  return { body, description: `/v1/grad of a ${batch}x${dIn} -> ${hidden} (tanh) -> ${dOut} MLP w.r.t. w1, w2 (FP32, b64)` };
}
