// The gradserve kernel library. Each kernel has a `plan*`/`check*` step that validates arguments and computes the
// output shape (run by the binding on the JS thread, before the output is allocated) and a run step that only reads
// its inputs and writes its preallocated output (safe on a worker thread). Run steps may still throw KernelError for
// data-dependent problems (gather index out of range, cast of NaN).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace gs {

// ---- elementwise unary ----
enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Log1p, Expm1, Sqrt, Square, Reciprocal, Abs, Sign, Sin, Cos, Tanh, Sigmoid, Relu, Softplus, Erf,
  Gelu, GeluTanh, SigmoidGrad, TanhGrad, ReluGrad, GeluGrad, GeluTanhGrad, ErfGrad
};
bool parseUnaryOp(const std::string& s, UnaryOp& op);
void checkUnary(UnaryOp op, DType dt);
void unary(UnaryOp op, const Arr& x, const Arr& out);

// ---- elementwise binary, where, clip ----
enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Equal, NotEqual, Less, LessEqual, Greater, GreaterEqual, MulNoNan
};
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

// ---- reductions and softmax ----
enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, Prod, LogSumExp };
bool parseReduceOp(const std::string& s, ReduceOp& op);
Shape planReduce(ReduceOp op, DType dt, const Shape& shape, const std::vector<int64_t>& axes);
void reduce(ReduceOp op, const Arr& x, const Shape& shape, const std::vector<int64_t>& axes, const Arr& out);

// axis < 0 means "flattened".
Shape planArgReduce(DType dt, const Shape& shape, int64_t axis);
void argReduce(bool isMax, const Arr& x, const Shape& shape, int64_t axis, const Arr& out);

void checkSoftmax(DType dt, const Shape& shape, int64_t axis);
void softmax(const Arr& x, const Shape& shape, int64_t axis, bool log, const Arr& out);

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

Shape planOneHot(const Shape& indShape, int64_t depth, int64_t axis);
void oneHot(const Arr& ind, const Shape& indShape, int64_t depth, int64_t axis, const Arr& out);

void cast(const Arr& x, const Arr& out);

// "avx2+fma" or "sse2": the elementwise path chosen at run time.
const char* simdName();

}  // namespace gs
