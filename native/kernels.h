// The gradserve kernel library. Each kernel has a `plan*`/`check*` step that validates arguments and computes the
// output shape (run by the binding on the JS thread, before the output is allocated) and a run step that only reads
// its inputs and writes its preallocated output (safe on a worker thread). Run steps may still throw KernelError for
// data-dependent problems (gather index out of range, cast of NaN).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "op_tables.h"

namespace gs {

// ---- elementwise unary (ops: op_tables.h) ----
bool parseUnaryOp(const std::string& s, UnaryOp& op);
void checkUnary(UnaryOp op, DType dt);
// `param` is the scalar parameter of the ops that take one (op_tables.h), ignored by the others.
void unary(UnaryOp op, const Arr& x, const Arr& out, double param = 0);

// ---- elementwise binary (ops: op_tables.h), where, clip ----
bool parseBinaryOp(const std::string& s, BinaryOp& op);
struct BinaryPlan {
  Shape out;
  DType outDt;
};
BinaryPlan planBinary(BinaryOp op, DType a, const Shape& as, DType b, const Shape& bs);
void binary(BinaryOp op, const Arr& a, const Shape& as, const Arr& b, const Shape& bs, const Shape& outShape,
            const Arr& out);

Shape planWhere(const Shape& cs, DType a, const Shape& as, DType b, const Shape& bs);
void where(const Arr& cond, const Shape& cs, const Arr& a, const Shape& as, const Arr& b, const Shape& bs,
           const Shape& outShape, const Arr& out);

struct ClipBounds {
  bool hasMin = false, hasMax = false;
  double min = 0, max = 0;
};
void checkClip(DType dt, const ClipBounds& b);
void clip(const Arr& x, const ClipBounds& b, const Arr& out);

// ---- reductions (ops: op_tables.h) and softmax ----
bool parseReduceOp(const std::string& s, ReduceOp& op);
bool parseArgReduceOp(const std::string& s, ArgReduceOp& op);
Shape planReduce(ReduceOp op, DType dt, const Shape& shape, const std::vector<int64_t>& axes);
void reduce(ReduceOp op, const Arr& x, const Shape& shape, const std::vector<int64_t>& axes, const Arr& out);

// axis < 0 means "flattened".
Shape planArgReduce(DType dt, const Shape& shape, int64_t axis);
void argReduce(bool isMax, const Arr& x, const Shape& shape, int64_t axis, const Arr& out);

void checkSoftmax(DType dt, const Shape& shape, int64_t axis);
void softmax(const Arr& x, const Shape& shape, int64_t axis, bool log, const Arr& out);

// ---- cumulative scans along one axis (native/cumulative.cpp) ----
bool parseCumulativeOp(const std::string& s, CumulativeOp& op);
// axis normalized; any datatype but BOOL. The output has the input's shape.
void checkCumulative(DType dt, const Shape& shape, int64_t axis);
void cumulative(CumulativeOp op, const Arr& x, const Shape& shape, int64_t axis, bool exclusive, bool reverse,
                const Arr& out);
// h[t] = b[t] + a[t] * h[t-1] along axis (h[-1] = 0); reverse: h[t] = b[t] + a[t+1] * h[t+1] (h[n] = 0). a and b have
// `shape` and one float datatype; a's entry at the first scanned position is never read.
void checkLinearScan(DType a, DType b, const Shape& shape, int64_t axis);
void linearScan(const Arr& a, const Arr& b, const Shape& shape, int64_t axis, bool reverse, const Arr& out);

// ---- linear algebra: eigh, svd, qr through LAPACK (native/linalg_spectral.cpp) ----
bool parseSpectralOp(const std::string& s, SpectralOp& op);
// x is (..., m, n), FP32 or FP64; eigh_* need m == n, qr_* need m >= n. The output shape: eigh_values (..., n),
// eigh_vectors (..., n, n), svd_values (..., k) with k = min(m, n), svd_vectors (..., m + n, k) (U's rows, then V's),
// qr_q (..., m, n), qr_r (..., n, n). Throws UNSUPPORTED without LAPACK.
Shape planSpectral(SpectralOp op, DType dt, const Shape& shape);
// A batch member with a non-finite entry gives NaN; LAPACK's failure to converge throws NO_CONVERGENCE naming the
// batch index.
void spectral(SpectralOp op, const Arr& x, const Shape& shape, const Arr& out);

// ---- matmul ----
struct MatmulPlan {
  Shape out, batch;
  int64_t m = 0, n = 0, k = 0;
};
MatmulPlan planMatmul(DType a, const Shape& as, DType b, const Shape& bs, bool transA, bool transB);
void matmul(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool transA, bool transB,
            const MatmulPlan& plan, const Arr& out);
struct BlasInfo {
  std::string name;
  bool cblas;
  int threads;
};
BlasInfo blasInfo();

// ---- convolution (native/conv.cpp) ----
using Pads = std::vector<std::pair<int64_t, int64_t>>;
struct ConvAttrs {
  std::vector<int64_t> strides, dilations, outputPadding;
  Pads pads;  // [before, after] per spatial axis
  int64_t groups = 1;
};
// A forward convolution: N images of C channels over the spatial size `in` give O channels over `out`; output
// position p meets input position p*s + k*d - pb at kernel tap k. Fewer than 3 spatial axes are padded in front with
// size-1 axes, so every loop runs over three.
struct ConvGeom {
  int64_t N = 0, C = 0, O = 0, groups = 1;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
  int64_t inSize() const { return in[0] * in[1] * in[2]; }
  int64_t outSize() const { return out[0] * out[1] * out[2]; }
  int64_t kSize() const { return k[0] * k[1] * k[2]; }
};
struct ConvPlan {
  ConvGeom g;
  Shape out;
};
// conv(x (N, C, *S), w (O, C/groups, *K), b (O) or none).
ConvPlan planConv(DType x, const Shape& xs, DType w, const Shape& ws, const Shape* bs, DType bdt, const ConvAttrs& a);
// conv_transpose(x (N, C, *S), w (C, O/groups, *K), b (O) or none), as ONNX ConvTranspose. The plan's geometry is
// the forward conv it is the adjoint of: x is that conv's output side, the result its input side.
ConvPlan planConvTranspose(DType x, const Shape& xs, DType w, const Shape& ws, const Shape* bs, DType bdt,
                           const ConvAttrs& a);
// The gradient of conv(x, w) with respect to w (shape ws) for the output cotangent g (shape of conv(x, w)).
ConvPlan planConvWeightGrad(DType x, const Shape& xs, DType g, const Shape& gs, const Shape& ws, const ConvAttrs& a);
void conv(const Arr& x, const Arr& w, const Arr* b, const ConvGeom& g, const Arr& y);
void convTranspose(const Arr& x, const Arr& w, const Arr* b, const ConvGeom& g, const Arr& y);
void convWeightGrad(const Arr& x, const Arr& gy, const ConvGeom& g, const Arr& gw);

// ---- data movement ----
Shape planTranspose(const Shape& shape, const std::vector<int64_t>& perm);
void transpose(const Arr& x, const Shape& shape, const std::vector<int64_t>& perm, const Arr& out);

void checkBroadcastTo(const Shape& shape, const Shape& outShape);
void broadcastTo(const Arr& x, const Shape& shape, const Shape& outShape, const Arr& out);

void checkSlice(const Shape& shape, const Shape& starts, const Shape& steps, const Shape& outShape);
void slice(const Arr& x, const Shape& shape, const Shape& starts, const Shape& steps, const Shape& outShape,
           const Arr& out);
void sliceBackward(const Arr& g, const Shape& outShape, const Shape& starts, const Shape& steps, const Shape& shape,
                   const Arr& out);

Shape planPad(const Shape& shape, const Pads& pads);
void pad(const Arr& x, const Shape& shape, const Pads& pads, double value, const Arr& out);

Shape planConcat(const std::vector<DType>& dts, const std::vector<Shape>& shapes, int64_t axis);
void concat(const std::vector<Arr>& xs, const std::vector<Shape>& shapes, int64_t axis, const Arr& out);

// ---- indexing and casts ----
Shape planGather(const Shape& shape, const Shape& indShape, int64_t axis);
void gather(const Arr& x, const Shape& shape, const Arr& ind, const Shape& indShape, int64_t axis, const Arr& out);
void checkScatterAdd(DType g, const Shape& gShape, const Shape& indShape, int64_t axis, const Shape& shape);
void scatterAdd(const Arr& g, const Arr& ind, const Shape& indShape, int64_t axis, const Shape& shape,
                const Arr& out);

// ONNX GatherElements / np.take_along_axis: indices have x's rank, out[p] = x[p with p[axis] = indices[p]]. Every
// index dim but `axis` must not exceed x's. `allowNegative` false rejects negative indices (class labels); `what`
// names an index in the out-of-range message ("index", "class label").
void checkGatherElements(const Shape& shape, const Shape& indShape, int64_t axis);
void gatherElements(const Arr& x, const Shape& shape, const Arr& ind, const Shape& indShape, int64_t axis,
                    bool allowNegative, const std::string& what, const Arr& out);

// ONNX ScatterElements with reduction add: out = x (zeros when !hasBase, with updates' datatype), then
// out[p with p[axis] = indices[p]] += updates[p] for every index position p. Duplicates accumulate; negative indices
// count from the end; out-of-range ones throw INDEX_OUT_OF_RANGE. Every index dim but `axis` must not exceed x's.
void checkScatterAddElements(bool hasBase, DType base, const Shape& shape, const Shape& indShape, DType upd,
                             int64_t axis);
void scatterAddElements(const Arr& x, bool hasBase, const Shape& shape, const Arr& ind, const Shape& indShape,
                        const Arr& upd, int64_t axis, const Arr& out);

Shape planOneHot(const Shape& indShape, int64_t depth, int64_t axis);
void oneHot(const Arr& ind, const Shape& indShape, int64_t depth, int64_t axis, const Arr& out);

void cast(const Arr& x, const Arr& out);

// ---- pooling (channels first: N, C and 1-3 spatial axes) ----
// Window geometry, spatial axes right-aligned into 3 (leading axes of size 1 when there are fewer).
struct PoolGeom {
  int64_t planes = 0;  // N * C (0 when the output is empty)
  int64_t in[3], out[3], k[3], s[3], pb[3], pa[3], d[3];
  int64_t inPlane = 0, outPlane = 0;
  Shape outShape;
};
// Output length per axis: floor (or ceil with ceilMode) of (in + pads - dilated kernel) / stride, plus 1; with
// ceilMode a last window that would start in the right padding is dropped.
PoolGeom planPool(const Shape& shape, const Shape& kernel, const Shape& strides, const Pads& pads,
                  const Shape& dilations, bool ceilMode);
void checkPoolDtype(DType dt);
// The first maximum of each window in row-major window order (a NaN wins); -Infinity for a window of padding only.
void maxPool(const Arr& x, const PoolGeom& g, const Arr& out);
// out[window] = h[the position max pooling of x picks] (0 for a window of padding only); h has x's shape.
void maxPoolGather(const Arr& h, const Arr& x, const PoolGeom& g, const Arr& out);
// Zeros of x's shape with g[window] added at the position max pooling of x picks: the transpose of maxPoolGather.
void maxPoolScatter(const Arr& g, const Arr& x, const PoolGeom& geom, const Arr& out);
// Window mean; the divisor counts the input positions, or with countIncludePad every position up to the declared
// pads (never beyond them).
void avgPool(const Arr& x, const PoolGeom& g, bool countIncludePad, const Arr& out);
// Zeros of the input shape with each window's g / divisor added over the window: the transpose of avgPool.
void avgPoolBackward(const Arr& g, const PoolGeom& geom, bool countIncludePad, const Arr& out);

// ---- row normalization (layer_norm, rms_norm, group_norm) ----
// Rows are the leading axes before `axis`, each normalized over the trailing axes from `axis`:
// (x - mean) / sqrt(var + epsilon) when `center`, else x / sqrt(mean(x^2) + epsilon).
void checkNormalize(DType dt, const Shape& shape, int64_t axis, double epsilon);
void normalize(const Arr& x, const Shape& shape, int64_t axis, double epsilon, bool center, const Arr& out);

// ---- batch_norm with batch statistics (training): x (N, C, *spatial), per-channel mean and biased variance ----
void checkBatchNorm(DType dt, const Shape& shape, double epsilon);
// y = (x - mean) / sqrt(var + epsilon) * scale + bias; scale and bias (C,).
void batchNormTrain(const Arr& x, const Shape& shape, const Arr& scale, const Arr& bias, double epsilon, const Arr& y);
// The gradient of <g, y> w.r.t. x: scale r (g - mean(g) - xhat mean(g xhat)), r = 1 / sqrt(var + epsilon).
void batchNormGrad(const Arr& x, const Shape& shape, const Arr& scale, const Arr& g, double epsilon, const Arr& dx);
// Σ g xhat per channel (C,): the gradient of <g, y> w.r.t. scale.
void batchNormScaleGrad(const Arr& x, const Shape& shape, const Arr& g, double epsilon, const Arr& out);

// ---- rearranging and sorting ----
// np.roll with one shift per axis (any integer; taken modulo the axis size).
Shape planRoll(const Shape& shape, const std::vector<int64_t>& shifts);
void roll(const Arr& x, const Shape& shape, const std::vector<int64_t>& shifts, const Arr& out);

// triu (upper) / tril on the last two axes: keeps column j of row i where j - i >= k (upper) or j - i <= k, else 0.
void checkTriangle(const Shape& shape);
void triangle(const Arr& x, const Shape& shape, int64_t k, bool upper, const Arr& out);

// Indices (INT64) of the first k entries of a stable sort along `axis`: NaN above every number, ties in their
// original order in both directions. The output has x's shape with k on `axis`.
Shape planSortIndices(DType dt, const Shape& shape, int64_t axis, int64_t k);
void sortIndices(const Arr& x, const Shape& shape, int64_t axis, bool descending, int64_t k, const Arr& out);

// "avx2+fma" or "sse2": the elementwise path chosen at run time.
const char* simdName();

}  // namespace gs
