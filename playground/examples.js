// The playground's examples: a graph, its inputs, and what each operation differentiates. Plain data, so a pasted
// graph works the same way (the page fills `of`/`wrt` from the graph when an example does not say).

const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));
/** A deterministic rows × cols matrix of small values (no randomness: the page and its test agree on the numbers). */
const matrix = (rows, cols, seed) => range(rows, (i) => range(cols, (j) => Number((Math.sin(seed + 1.7 * i + 0.9 * j) * 0.5).toFixed(3))));

export const EXAMPLES = [
  {
    id: 'linear',
    title: 'Linear layer y = x·w (the worked VJP)',
    note: 'N=1, D=2, M=3 with the cotangent dL/dy = [[1, 0, -1]]: dL/dx = dy·wᵀ = [[-2, -2]], dL/dw = xᵀ·dy = [[1, 0, -1], [2, 0, -2]]. `loss` = sum(y) is there for grad and hessian.',
    graph: {
      inputs: { x: { shape: [1, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
      nodes: [
        { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
        { name: 'loss', op: 'sum', inputs: ['y'] },
      ],
      outputs: ['y'],
    },
    parameters: ['w'],
    inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] },
    operation: 'vjp',
    fields: {
      evaluate: {},
      grad: { of: 'loss', wrt: ['x', 'w'] },
      vjp: { cotangents: { y: [[1, 0, -1]] }, wrt: ['x', 'w'] },
      jvp: { tangents: { x: [[1, 0]] }, of: ['y'] },
      jacobian: { of: ['y'], wrt: ['x', 'w'] },
      hessian: { of: 'loss', wrt: ['x'] },
    },
  },
  {
    id: 'mlp',
    title: 'MLP 3-5-2 with tanh and softmax cross-entropy',
    note: 'A batch of 4 examples; the Jacobian of the logits [4, 2] with respect to w2 [5, 2] has shape [4, 2, 5, 2].',
    graph: {
      inputs: {
        x: { shape: [4, 3], datatype: 'FP32' },
        w1: { shape: [3, 5], datatype: 'FP32' },
        b1: { shape: [5], datatype: 'FP32' },
        w2: { shape: [5, 2], datatype: 'FP32' },
        labels: { shape: [4], datatype: 'INT32' },
      },
      nodes: [
        { name: 'h', op: 'matmul', inputs: ['x', 'w1'] },
        { name: 'hb', op: 'add', inputs: ['h', 'b1'] },
        { name: 'a', op: 'tanh', inputs: ['hb'] },
        { name: 'logits', op: 'matmul', inputs: ['a', 'w2'] },
        { name: 'loss', op: 'softmax_cross_entropy', inputs: ['logits', 'labels'] },
      ],
      outputs: ['loss'],
    },
    parameters: ['w1', 'b1', 'w2'],
    inputs: { x: matrix(4, 3, 1), w1: matrix(3, 5, 2), b1: [0.1, -0.1, 0.05, 0, 0.2], w2: matrix(5, 2, 3), labels: [0, 1, 1, 0] },
    operation: 'grad',
    fields: {
      evaluate: {},
      grad: { of: 'loss', wrt: ['w1', 'b1', 'w2'] },
      vjp: { cotangents: { logits: matrix(4, 2, 4) }, wrt: ['w2'] },
      jvp: { tangents: { w2: matrix(5, 2, 5) }, of: ['logits'] },
      jacobian: { of: ['logits'], wrt: ['w2'] },
      hessian: { of: 'loss', wrt: ['w2'] },
    },
  },
  {
    id: 'cnn',
    title: 'Small CNN: conv2d 3×3, relu, dense, softmax cross-entropy',
    note: 'One 1×5×5 image, two 3×3 filters (output [1, 2, 3, 3]), flattened into a 18-3 dense layer.',
    graph: {
      inputs: {
        image: { shape: [1, 1, 5, 5], datatype: 'FP32' },
        filters: { shape: [2, 1, 3, 3], datatype: 'FP32' },
        w: { shape: [18, 3], datatype: 'FP32' },
        label: { shape: [1], datatype: 'INT32' },
      },
      nodes: [
        { name: 'features', op: 'conv', inputs: ['image', 'filters'] },
        { name: 'act', op: 'relu', inputs: ['features'] },
        { name: 'flat', op: 'reshape', inputs: ['act'], attrs: { shape: [1, 18] } },
        { name: 'logits', op: 'matmul', inputs: ['flat', 'w'] },
        { name: 'loss', op: 'softmax_cross_entropy', inputs: ['logits', 'label'] },
      ],
      outputs: ['loss'],
    },
    parameters: ['filters', 'w'],
    inputs: {
      image: [[matrix(5, 5, 6)]],
      filters: [[matrix(3, 3, 7)], [matrix(3, 3, 8)]],
      w: matrix(18, 3, 9),
      label: [2],
    },
    operation: 'grad',
    fields: {
      evaluate: {},
      grad: { of: 'loss', wrt: ['filters', 'w'] },
      vjp: { cotangents: { logits: [[1, 0, 0]] }, wrt: ['filters'] },
      jvp: { tangents: { filters: [[matrix(3, 3, 10)], [matrix(3, 3, 11)]] }, of: ['logits'] },
      jacobian: { of: ['logits'], wrt: ['filters'] },
      hessian: { of: 'loss', wrt: ['w'] },
    },
  },
];
