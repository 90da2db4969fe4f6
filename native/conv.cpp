// Convolution with 1-3 spatial axes (channels first) as vol2col + GEMM, grouped and depthwise, and its adjoints:
// convTranspose (GEMM + col2vol) and convWeightGrad (vol2col + GEMM accumulated over images).
//
// Every kernel works on the geometry of the forward convolution (ConvGeom): the column matrix of one image and one
// group has a row per (input channel, kernel tap) and a column per output position, so
//   forward:      y[g]   = W[g] · col(x[g])                (Og x Cg*K) · (Cg*K x P)
//   transpose:    x̄[g]  = col2vol(W[g]ᵀ · ȳ[g])             (with stride 1: a forward conv of ȳ, kernel flipped)
//   weight grad:  W̄[g] += ȳ[g] · col(x[g])ᵀ               summed over images
// Images are processed one at a time per worker thread, in tiles of output positions, so each worker's column buffer
// is bounded by kColBytes whatever the batch (and, for a huge image, whatever its size). A pointwise conv (1x1,
// stride 1, no padding) needs no columns: the image itself is the column matrix.
//
// Profile (3x3, 64 -> 64 channels, 32x32, forward): OpenBLAS's sgemm kernel ~64% of the kernel's time, packing the
// column matrix ~11%, vol2col ~22% when it walked the output line by line (18 432 runs of 32 elements per image);
// the size-keeping stride-1 case now copies whole planes (vol2colShifted): -7 to -10% for the forward pass. The bias
// is the product's starting value (no pass of its own, and none of OpenBLAS's to zero C): -2 to -5%. Computing the
// transposed product instead (col^T W^T, other operand packed) measured the same within 5%, as did column blocks
// small enough for the L2 cache (256 or 128 positions x 576 rows, re-measured on 2026-12-07); what is left is sgemm's
// speed. So did a sum of one product per kernel tap over the zero-padded image (no column matrix; 3x3, stride 1),
// tried on 2026-12-07: 33.4 against 32.7 ms for this forward on one thread, and -20% to +15% across 16-128 channels
// and 16-56 pixels, the weight gradient mostly slower; and a Winograd F(2x2, 3x3) prototype halved the products' time
// (16 ms) but spent as much again transforming tiles. Both were left out.
#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "conv_columns.h"
#include "conv_direct.h"
#include "parallel.h"

namespace gs {

namespace {

using conv_columns::col2vol;
using conv_columns::vol2col;

// Most bytes of a column buffer (one image, one tile of output positions).
constexpr int64_t kColBytes = int64_t(16) << 20;

int64_t checkedMul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxElements) invalid(what + " is too large");
  return r;
}

int64_t checkedAdd(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r) || r > kMaxElements || r < -kMaxElements) invalid(what + " is too large");
  return r;
}

std::string fmtList(const std::vector<int64_t>& v) { return fmtShape(v); }

std::string fmtPads(const Pads& p) {
  std::string r = "[";
  for (size_t i = 0; i < p.size(); i++) {
    if (i) r += ", ";
    r += "[" + std::to_string(p[i].first) + ", " + std::to_string(p[i].second) + "]";
  }
  return r + "]";
}

// Checks what every convolution kernel shares and fills the per-axis fields of g (spatial axes right-aligned in 3).
void checkAttrs(const char* op, size_t nd, const ConvAttrs& a, const Shape& kernel, ConvGeom& g) {
  auto len = [&](size_t n, const char* name) {
    if (n != nd)
      invalid(std::string(op) + ": " + name + " has " + std::to_string(n) + " entries for " + std::to_string(nd) +
              " spatial axes");
  };
  len(a.strides.size(), "strides");
  len(a.dilations.size(), "dilations");
  len(a.pads.size(), "pads");
  if (a.groups < 1) invalid(std::string(op) + ": groups must be >= 1, got " + std::to_string(a.groups));
  for (size_t i = 0; i < nd; i++) {
    const size_t j = 3 - nd + i;
    if (a.strides[i] < 1 || a.strides[i] > kMaxElements)
      invalid(std::string(op) + ": strides " + fmtList(a.strides) + " must be >= 1");
    if (a.dilations[i] < 1 || a.dilations[i] > kMaxElements)
      invalid(std::string(op) + ": dilations " + fmtList(a.dilations) + " must be >= 1");
    if (a.pads[i].first < 0 || a.pads[i].second < 0 || a.pads[i].first > kMaxElements || a.pads[i].second > kMaxElements)
      invalid(std::string(op) + ": pads " + fmtPads(a.pads) + " must be non-negative");
    if (kernel[i] < 1) invalid(std::string(op) + ": the kernel " + fmtShape(kernel) + " has an empty axis");
    g.k[j] = kernel[i];
    g.s[j] = a.strides[i];
    g.d[j] = a.dilations[i];
    g.pb[j] = a.pads[i].first;
  }
}

// Extent of the dilated kernel along axis i: d*(k-1) + 1.
int64_t extent(const ConvAttrs& a, const Shape& kernel, size_t i) {
  return checkedAdd(checkedMul(a.dilations[i], kernel[i] - 1, "the dilated kernel"), 1, "the dilated kernel");
}

void checkFloat(const char* op, DType x, DType other, const char* name) {
  if (!isFloat(x)) invalid(std::string(op) + " accepts FP32 and FP64, x is " + dtypeName(x));
  if (other != x) invalid(std::string(op) + ": x is " + dtypeName(x) + " but " + name + " is " + dtypeName(other));
}

void checkRanks(const char* op, const Shape& xs, const Shape& ws, const char* xName) {
  if (xs.size() < 3 || xs.size() > 5)
    invalid(std::string(op) + ": " + xName + " " + fmtShape(xs) + " must have rank 3 to 5 (N, C and 1-3 spatial axes)");
  if (ws.size() != xs.size())
    invalid(std::string(op) + ": w " + fmtShape(ws) + " must have the rank of " + xName + " " + fmtShape(xs));
}

void checkBias(const char* op, const Shape* bs, DType bdt, DType dt, int64_t channels) {
  if (bs == nullptr) return;
  if (bdt != dt) invalid(std::string(op) + ": x is " + dtypeName(dt) + " but b is " + dtypeName(bdt));
  if (bs->size() != 1 || (*bs)[0] != channels)
    invalid(std::string(op) + ": b " + fmtShape(*bs) + " must have shape [" + std::to_string(channels) + "]");
}

// The sizes the kernels hand to cblas (int) must fit: leading dimensions are spatial sizes and column rows.
void checkBlasDims(const char* op, const ConvGeom& g) {
  const int64_t rows = checkedMul(g.C / g.groups, g.kSize(), "the column matrix");
  if (rows > INT32_MAX || g.inSize() > INT32_MAX || g.outSize() > INT32_MAX || g.O > INT32_MAX)
    invalid(std::string(op) + ": a matrix dimension exceeds 2^31 - 1");
}

template <typename T> void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B,
                                int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if constexpr (std::is_same<T, float>::value) gemmF32(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
  else gemmF64(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

// 1x1 kernel, stride 1, no padding: the column matrix is the image itself.
bool pointwise(const ConvGeom& g) {
  for (int i = 0; i < 3; i++)
    if (g.k[i] != 1 || g.s[i] != 1 || g.pb[i] != 0 || g.in[i] != g.out[i]) return false;
  return true;
}

// Output positions per column tile: all of them unless the buffer would pass kColBytes. (Cutting the column matrix
// further, into blocks of channels or of positions that fit the L2 cache, measured no faster: the GEMM loses more.)
int64_t tileOf(int64_t rows, int64_t positions, size_t es) {
  const int64_t fit = kColBytes / std::max<int64_t>(1, rows * int64_t(es));
  return std::max<int64_t>(1, std::min(positions, fit));
}

// One column buffer per worker, uninitialized (vol2col writes every element before the product reads it).
template <typename T> std::vector<std::unique_ptr<T[]>> columnBuffers(int workers, int64_t elements) {
  std::vector<std::unique_ptr<T[]>> cols;
  for (int w = 0; w < workers; w++) cols.emplace_back(elements > 0 ? new T[size_t(elements)] : nullptr);
  return cols;
}

// Images of a batch go to parallelFor (native/parallel.h) with the workers a SplitScope the caller holds grants, while
// every product runs on one thread: independent single-threaded products on whole images beat threading each
// product, which meets at a barrier several times per product (and waits there for any core the machine is busy with).

template <typename T> void convT(const T* x, const T* w, const T* b, const ConvGeom& g, T* y) {
  if constexpr (std::is_same<T, float>::value)
    if (directConvFits(g)) return directConv(x, w, b, g, y);
  const int64_t Cg = g.C / g.groups, Og = g.O / g.groups, rows = Cg * g.kSize();
  const int64_t inSz = g.inSize(), outSz = g.outSize();
  const bool direct = pointwise(g);
  const int64_t tile = direct ? outSz : tileOf(rows, outSz, sizeof(T));
  const SplitScope split(double(g.N) * double(g.O) * double(outSz) * double(rows), g.N);
  const int workers = split.workers();
  const auto cols = columnBuffers<T>(workers, direct ? 0 : rows * tile);
  parallelFor(g.N, workers, [&](int worker, int64_t n) {
    T* col = cols[size_t(worker)].get();
    for (int64_t p0 = 0; p0 < outSz; p0 += tile) {
      const int64_t p1 = std::min(outSz, p0 + tile), len = p1 - p0;
      for (int64_t grp = 0; grp < g.groups; grp++) {
        const T* xg = x + (n * g.C + grp * Cg) * inSz;
        T* yg = y + (n * g.O + grp * Og) * outSz + p0;
        // The bias is the product's starting value (C = bias, then C += W col): no separate pass over the output
        const bool biased = b != nullptr;
        if (biased)
          for (int64_t o = 0; o < Og; o++) std::fill(yg + o * outSz, yg + o * outSz + len, b[grp * Og + o]);
        if (direct) {
          gemm<T>(false, false, Og, len, rows, w + grp * Og * rows, rows, xg + p0, inSz, yg, outSz, biased);
        } else {
          vol2col(xg, Cg, g, p0, p1, col);
          gemm<T>(false, false, Og, len, rows, w + grp * Og * rows, rows, col, len, yg, outSz, biased);
        }
      }
    }
  });
}

// With stride 1, the transpose is itself a forward convolution, from the output side to the input side, with the
// kernel flipped and its channel axes swapped, and `before` pads of dilation * (k - 1) - before (when that is not
// negative). That form writes a column matrix and a product of the output's size, where GEMM + col2vol writes a
// product as large as the column matrix and then adds it back: measured ~11% less CPU time (3x3, 64 channels, 32x32),
// where both column matrices are the same size.
bool transposeAsConv(const ConvGeom& g, ConvGeom& f) {
  for (int i = 0; i < 3; i++)
    if (g.s[i] != 1 || g.pb[i] > g.d[i] * (g.k[i] - 1)) return false;
  f = g;
  f.C = g.O;
  f.O = g.C;
  for (int i = 0; i < 3; i++) {
    f.in[i] = g.out[i];
    f.out[i] = g.in[i];
    f.pb[i] = g.d[i] * (g.k[i] - 1) - g.pb[i];
  }
  return true;
}

// The kernel of transposeAsConv: w (O, C/groups, *k) becomes (C, O/groups, *k), every spatial axis reversed.
template <typename T> std::vector<T> flippedKernel(const T* w, const ConvGeom& g) {
  const int64_t Cg = g.C / g.groups, Og = g.O / g.groups, K = g.kSize();
  std::vector<T> f(size_t(g.O * Cg * K));
  for (int64_t grp = 0; grp < g.groups; grp++)
    for (int64_t o = 0; o < Og; o++)
      for (int64_t c = 0; c < Cg; c++) {
        const T* src = w + ((grp * Og + o) * Cg + c) * K;
        T* dst = f.data() + ((grp * Cg + c) * Og + o) * K;
        for (int64_t k = 0; k < K; k++) dst[k] = src[K - 1 - k];
      }
  return f;
}

// x is the forward conv's output side (N, O, out), y its input side (N, C, in); b (C) or null.
template <typename T> void convTransposeT(const T* x, const T* w, const T* b, const ConvGeom& g, T* y) {
  const int64_t Cg = g.C / g.groups, Og = g.O / g.groups, rows = Cg * g.kSize();
  const int64_t inSz = g.inSize(), outSz = g.outSize();
  const bool direct = pointwise(g);
  ConvGeom f;
  if constexpr (std::is_same<T, float>::value)
    if (transposeAsConv(g, f) && directConvFits(f)) return directConv(x, flippedKernel(w, g).data(), b, f, y);
  // The flipped form's column matrix is Og * K by the input side's positions, GEMM + col2vol's Cg * K by the output
  // side's: take the flipped form only when its matrix is no larger. Where the input side has fewer channels or more
  // positions (LeNet's 5x5 convolutions: 1 -> 6 channels at 28x28, 6 -> 16 at 14x14 -> 10x10), GEMM + col2vol
  // moves 3-6x fewer bytes: measured 4x less CPU time for the input gradient of both.
  if (!direct && Og * inSz <= Cg * outSz && transposeAsConv(g, f)) {
    convT(x, flippedKernel(w, g).data(), b, f, y);
    return;
  }
  const int64_t tile = direct ? outSz : tileOf(rows, outSz, sizeof(T));
  const SplitScope split(double(g.N) * double(g.O) * double(outSz) * double(rows), g.N);
  const int workers = split.workers();
  const auto cols = columnBuffers<T>(workers, direct ? 0 : rows * tile);
  parallelFor(g.N, workers, [&](int worker, int64_t n) {
    T* col = cols[size_t(worker)].get();
    for (int64_t c = 0; c < g.C; c++) {
      T* yc = y + (n * g.C + c) * inSz;
      std::fill(yc, yc + inSz, b != nullptr ? b[c] : T(0));
    }
    for (int64_t p0 = 0; p0 < outSz; p0 += tile) {
      const int64_t p1 = std::min(outSz, p0 + tile), len = p1 - p0;
      for (int64_t grp = 0; grp < g.groups; grp++) {
        const T* xg = x + (n * g.O + grp * Og) * outSz + p0;
        T* yg = y + (n * g.C + grp * Cg) * inSz;
        if (direct) {
          gemm<T>(true, false, rows, len, Og, w + grp * Og * rows, rows, xg, outSz, yg + p0, inSz, true);
        } else {
          gemm<T>(true, false, rows, len, Og, w + grp * Og * rows, rows, xg, outSz, col, len, false);
          col2vol(col, Cg, g, p0, p1, yg);
        }
      }
    }
  });
}

// Each worker sums its images' products into its own copy of the gradient (worker 0 into gw); the copies are added
// at the end.
template <typename T> void convWeightGradT(const T* x, const T* gy, const ConvGeom& g, T* gw) {
  if constexpr (std::is_same<T, float>::value)
    if (directConvFits(g, true)) return directConvWeightGrad(x, gy, g, gw);
  const int64_t Cg = g.C / g.groups, Og = g.O / g.groups, rows = Cg * g.kSize();
  const int64_t inSz = g.inSize(), outSz = g.outSize(), size = g.O * rows;
  const bool direct = pointwise(g);
  const int64_t tile = direct ? outSz : tileOf(rows, outSz, sizeof(T));
  const SplitScope split(double(g.N) * double(g.O) * double(outSz) * double(rows), g.N);
  const int workers = split.workers();
  const auto cols = columnBuffers<T>(workers, direct ? 0 : rows * tile);
  std::vector<std::vector<T>> partial(size_t(workers - 1), std::vector<T>(size_t(size), T(0)));
  std::fill(gw, gw + size, T(0));
  parallelFor(g.N, workers, [&](int worker, int64_t n) {
    T* col = cols[size_t(worker)].get();
    T* acc = worker == 0 ? gw : partial[size_t(worker - 1)].data();
    for (int64_t p0 = 0; p0 < outSz; p0 += tile) {
      const int64_t p1 = std::min(outSz, p0 + tile), len = p1 - p0;
      for (int64_t grp = 0; grp < g.groups; grp++) {
        const T* xg = x + (n * g.C + grp * Cg) * inSz;
        const T* gg = gy + (n * g.O + grp * Og) * outSz + p0;
        const T* B = xg + p0;
        int64_t ldb = inSz;
        if (!direct) {
          vol2col(xg, Cg, g, p0, p1, col);
          B = col;
          ldb = len;
        }
        gemm<T>(false, true, Og, rows, len, gg, outSz, B, ldb, acc + grp * Og * rows, rows, true);
      }
    }
  });
  for (const auto& p : partial)
    for (int64_t i = 0; i < size; i++) gw[i] += p[size_t(i)];
}

}  // namespace

ConvPlan planConv(DType x, const Shape& xs, DType w, const Shape& ws, const Shape* bs, DType bdt, const ConvAttrs& a) {
  const char* op = "conv";
  checkFloat(op, x, w, "w");
  checkRanks(op, xs, ws, "x");
  const size_t nd = xs.size() - 2;
  ConvPlan p;
  ConvGeom& g = p.g;
  const Shape kernel(ws.begin() + 2, ws.end());
  checkAttrs(op, nd, a, kernel, g);
  g.N = xs[0];
  g.C = xs[1];
  g.O = ws[0];
  g.groups = a.groups;
  if (g.C % g.groups != 0 || g.O % g.groups != 0)
    invalid("conv: groups " + std::to_string(g.groups) + " must divide the channels of x " + fmtShape(xs) +
            " and the output channels of w " + fmtShape(ws));
  if (checkedMul(ws[1], g.groups, "the input channels") != g.C)
    invalid("conv: w " + fmtShape(ws) + " must have C/groups = " + std::to_string(g.C / g.groups) +
            " input channels for x " + fmtShape(xs));
  checkBias(op, bs, bdt, x, g.O);
  p.out = {g.N, g.O};
  for (size_t i = 0; i < nd; i++) {
    const size_t j = 3 - nd + i;
    const int64_t span = checkedAdd(checkedAdd(xs[2 + i], a.pads[i].first, "the padded input"), a.pads[i].second,
                                    "the padded input");
    const int64_t e = extent(a, kernel, i);
    if (span < e)
      invalid("conv: x " + fmtShape(xs) + " padded by " + fmtPads(a.pads) + " is smaller than the dilated kernel of w " +
              fmtShape(ws) + " along spatial axis " + std::to_string(i));
    g.in[j] = xs[2 + i];
    g.out[j] = (span - e) / a.strides[i] + 1;
    p.out.push_back(g.out[j]);
  }
  numel(p.out, "conv output shape");
  checkBlasDims(op, g);
  return p;
}

ConvPlan planConvTranspose(DType x, const Shape& xs, DType w, const Shape& ws, const Shape* bs, DType bdt,
                           const ConvAttrs& a) {
  const char* op = "convTranspose";
  checkFloat(op, x, w, "w");
  checkRanks(op, xs, ws, "x");
  const size_t nd = xs.size() - 2;
  ConvPlan p;
  ConvGeom& g = p.g;
  const Shape kernel(ws.begin() + 2, ws.end());
  checkAttrs(op, nd, a, kernel, g);
  if (a.outputPadding.size() != nd)
    invalid("convTranspose: outputPadding has " + std::to_string(a.outputPadding.size()) + " entries for " +
            std::to_string(nd) + " spatial axes");
  // The forward conv this is the adjoint of: its output side is x, its input side the result.
  g.N = xs[0];
  g.O = xs[1];
  g.groups = a.groups;
  if (ws[0] != g.O) invalid("convTranspose: w " + fmtShape(ws) + " must have the channels of x " + fmtShape(xs) + " first");
  if (g.O % g.groups != 0)
    invalid("convTranspose: groups " + std::to_string(g.groups) + " must divide the channels of x " + fmtShape(xs));
  g.C = checkedMul(ws[1], g.groups, "the output channels");
  checkBias(op, bs, bdt, x, g.C);
  p.out = {g.N, g.C};
  for (size_t i = 0; i < nd; i++) {
    const size_t j = 3 - nd + i;
    const int64_t op_i = a.outputPadding[i];
    if (op_i < 0 || op_i >= std::max(a.strides[i], a.dilations[i]))
      invalid("convTranspose: outputPadding " + fmtList(a.outputPadding) + " must be >= 0 and < max(stride, dilation)");
    // (X - 1) * s - pb - pa + d * (k - 1) + 1 + output_padding
    int64_t size = checkedMul(std::max<int64_t>(xs[2 + i] - 1, -1), a.strides[i], "the output");
    size = checkedAdd(size, extent(a, kernel, i), "the output");
    size = checkedAdd(size, op_i - a.pads[i].first - a.pads[i].second, "the output");
    if (size < 1)
      invalid("convTranspose: x " + fmtShape(xs) + " with w " + fmtShape(ws) + ", pads " + fmtPads(a.pads) +
              " gives an empty output along spatial axis " + std::to_string(i));
    g.out[j] = xs[2 + i];
    g.in[j] = size;
    p.out.push_back(size);
  }
  numel(p.out, "convTranspose output shape");
  checkBlasDims(op, g);
  return p;
}

ConvPlan planConvWeightGrad(DType x, const Shape& xs, DType gdt, const Shape& gs, const Shape& ws, const ConvAttrs& a) {
  const char* op = "convWeightGrad";
  checkFloat(op, x, gdt, "g");
  checkRanks(op, xs, ws, "x");
  const ConvPlan fwd = planConv(x, xs, x, ws, nullptr, x, a);
  if (gs != fwd.out)
    invalid("convWeightGrad: g " + fmtShape(gs) + " must have the shape of conv(x, w), " + fmtShape(fwd.out));
  ConvPlan p = fwd;
  p.out = ws;
  numel(p.out, "convWeightGrad output shape");
  return p;
}

void conv(const Arr& x, const Arr& w, const Arr* b, const ConvGeom& g, const Arr& y) {
  if (x.dt == DType::F32) convT(x.as<float>(), w.as<float>(), b ? b->as<float>() : nullptr, g, y.as<float>());
  else convT(x.as<double>(), w.as<double>(), b ? b->as<double>() : nullptr, g, y.as<double>());
}

void convTranspose(const Arr& x, const Arr& w, const Arr* b, const ConvGeom& g, const Arr& y) {
  if (x.dt == DType::F32) convTransposeT(x.as<float>(), w.as<float>(), b ? b->as<float>() : nullptr, g, y.as<float>());
  else convTransposeT(x.as<double>(), w.as<double>(), b ? b->as<double>() : nullptr, g, y.as<double>());
}

void convWeightGrad(const Arr& x, const Arr& gy, const ConvGeom& g, const Arr& gw) {
  if (x.dt == DType::F32) convWeightGradT(x.as<float>(), gy.as<float>(), g, gw.as<float>());
  else convWeightGradT(x.as<double>(), gy.as<double>(), g, gw.as<double>());
}

}  // namespace gs
