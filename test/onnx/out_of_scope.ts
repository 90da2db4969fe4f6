/**
 * ONNX op types that are out of scope for the importer, with the reason. A node test that uses any of them is not
 * run (it is counted as out of scope); every other node test is in scope and counts toward the pass rate. In scope
 * are the ops whose meaning gradserve's op set (OPS.md v1 and v2) expresses, directly or as a small composition,
 * including the shape and constant ops that are folded at import. Reviewed: an op moves out of this list when
 * gradserve gets the means to express it (Conv and ConvTranspose are in scope: they map onto `conv` /
 * `conv_transpose` of OPS.md v2).
 */
const SEQUENCES = 'sequence, map and optional values: gradserve values are tensors';
const CONTROL = 'control flow with subgraphs (If, Loop, Scan): a gradserve graph has no subgraphs';
const STRINGS = 'string tensors: gradserve has numbers and booleans only';
const QUANTIZED = 'quantized 8-bit arithmetic: gradserve has no 8-bit datatypes and these have no useful derivative';
const RANDOM = 'random values: no reproducible result and no derivative';
const DATA_SHAPE = 'the output shape depends on the data, which a gradserve graph cannot express';
const TRAINING = 'optimizer steps (ai.onnx.preview.training): gradserve computes the gradients they consume';
const RECURRENT = 'recurrent layers run a loop over time: not in OPS.md v1/v2 (no scan over a subgraph)';
const IMAGE = 'resampling and signal processing: not in OPS.md v1/v2';
const BITS = 'bit manipulation of unsigned integers: not in OPS.md';
const LINALG = 'matrix decompositions are OPS.md v3 (linear algebra), not v1/v2';
const INDEX_TUPLES = 'gather/scatter by index tuples: OPS.md v1/v2 index one axis at a time (gather, take_along_axis, scatter_add)';

export const OUT_OF_SCOPE: Readonly<Record<string, string>> = {
  SequenceAt: SEQUENCES, SequenceConstruct: SEQUENCES, SequenceEmpty: SEQUENCES, SequenceErase: SEQUENCES,
  SequenceInsert: SEQUENCES, SequenceLength: SEQUENCES, SequenceMap: SEQUENCES, SplitToSequence: SEQUENCES,
  ConcatFromSequence: SEQUENCES, Optional: SEQUENCES, OptionalGetElement: SEQUENCES, OptionalHasElement: SEQUENCES,
  If: CONTROL, Loop: CONTROL, Scan: CONTROL,
  StringNormalizer: STRINGS, TfIdfVectorizer: STRINGS,
  QuantizeLinear: QUANTIZED, DequantizeLinear: QUANTIZED, DynamicQuantizeLinear: QUANTIZED, QLinearConv: QUANTIZED,
  QLinearMatMul: QUANTIZED, MatMulInteger: QUANTIZED, ConvInteger: QUANTIZED,
  Bernoulli: RANDOM, RandomNormal: RANDOM, RandomNormalLike: RANDOM, RandomUniform: RANDOM, RandomUniformLike: RANDOM,
  Multinomial: RANDOM,
  NonZero: DATA_SHAPE, Unique: DATA_SHAPE, Compress: DATA_SHAPE, NonMaxSuppression: DATA_SHAPE,
  Adagrad: TRAINING, Adam: TRAINING, Momentum: TRAINING, Gradient: TRAINING,
  LSTM: RECURRENT, GRU: RECURRENT, RNN: RECURRENT,
  Resize: IMAGE, Upsample: IMAGE, GridSample: IMAGE, RoiAlign: IMAGE, MaxRoiPool: IMAGE, DFT: IMAGE, STFT: IMAGE,
  MelWeightMatrix: IMAGE, HannWindow: IMAGE, HammingWindow: IMAGE, BlackmanWindow: IMAGE, Col2Im: IMAGE,
  LRN: 'local response normalization across channels: not in OPS.md v1/v2', MaxUnpool: IMAGE,
  LpPool: 'Lp pooling: OPS.md v2 pools by max and average only', GlobalLpPool: 'Lp pooling: OPS.md v2 pools by max and average only',
  BitShift: BITS, Det: LINALG,
  GatherND: INDEX_TUPLES, ScatterND: INDEX_TUPLES, ReverseSequence: 'per-batch sequence reversal: not in OPS.md v1/v2',
};
