// Scans along one axis: cumsum / cumprod (inclusive or exclusive, forward or reverse) and the first-order linear
// recurrence that cumprod's exact derivatives are written with. The tensor is seen as [outer, n, inner] around the
// axis; each (outer, column block) runs down the axis with one accumulator per column, so every step reads and writes
// a contiguous run of columns. Accumulators are double for FP32 and FP64 (as PyTorch's CPU scans) and uint64 for the
// integers (two's-complement wrapping, as NumPy).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels.h"

namespace gs {

namespace {

// Columns per accumulator block: bounded scratch whatever the tensor's inner size.
constexpr int64_t kBlock = 256;

struct Geometry {
  int64_t outer = 1, n = 1, inner = 1;
};

Geometry around(const Shape& shape, int64_t axis) {
  Geometry g;
  g.n = shape[size_t(axis)];
  for (int64_t d = 0; d < axis; d++) g.outer *= shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); d++) g.inner *= shape[d];
  return g;
}

template <typename T> using Acc = std::conditional_t<kIsFloat<T>, double, uint64_t>;

template <typename T, bool Prod>
void scan(const T* x, T* out, const Geometry& g, bool exclusive, bool reverse) {
  using A = Acc<T>;
  A acc[kBlock];
  for (int64_t o = 0; o < g.outer; o++) {
    const int64_t base = o * g.n * g.inner;
    for (int64_t j0 = 0; j0 < g.inner; j0 += kBlock) {
      const int64_t w = std::min(kBlock, g.inner - j0);
      for (int64_t j = 0; j < w; j++) acc[j] = Prod ? A(1) : A(0);
      for (int64_t k = 0; k < g.n; k++) {
        const int64_t t = reverse ? g.n - 1 - k : k;
        const T* xs = x + base + t * g.inner + j0;
        T* os = out + base + t * g.inner + j0;
        for (int64_t j = 0; j < w; j++) {
          // integers go through uint64 so overflow wraps instead of being undefined
          const A v = kIsFloat<T> ? A(xs[j]) : A(int64_t(xs[j]));
          if (exclusive) os[j] = T(acc[j]);
          acc[j] = Prod ? A(acc[j] * v) : A(acc[j] + v);
          if (!exclusive) os[j] = T(acc[j]);
        }
      }
    }
  }
}

template <typename T>
void linearScanT(const T* a, const T* b, T* out, const Geometry& g, bool reverse) {
  double h[kBlock];
  for (int64_t o = 0; o < g.outer; o++) {
    const int64_t base = o * g.n * g.inner;
    for (int64_t j0 = 0; j0 < g.inner; j0 += kBlock) {
      const int64_t w = std::min(kBlock, g.inner - j0);
      for (int64_t j = 0; j < w; j++) h[j] = 0;
      for (int64_t k = 0; k < g.n; k++) {
        const int64_t t = reverse ? g.n - 1 - k : k;
        // the coefficient of the link between t and the position scanned before it sits at the larger index
        const int64_t c = reverse ? t + 1 : t;
        const T* bs = b + base + t * g.inner + j0;
        T* os = out + base + t * g.inner + j0;
        if (k == 0) {
          for (int64_t j = 0; j < w; j++) os[j] = T(h[j] = double(bs[j]));
          continue;
        }
        const T* as = a + base + c * g.inner + j0;
        for (int64_t j = 0; j < w; j++) os[j] = T(h[j] = double(bs[j]) + double(as[j]) * h[j]);
      }
    }
  }
}

void checkAxis(const char* what, const Shape& shape, int64_t axis) {
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid(std::string(what) + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
}

}  // namespace

bool parseCumulativeOp(const std::string& s, CumulativeOp& op) { return parseOpName(s, kCumulativeOps, op); }

void checkCumulative(DType dt, const Shape& shape, int64_t axis) {
  if (dt == DType::BOOL) invalid("cumulative ops do not accept BOOL");
  checkAxis("cumulative", shape, axis);
}

void cumulative(CumulativeOp op, const Arr& x, const Shape& shape, int64_t axis, bool exclusive, bool reverse,
                const Arr& out) {
  if (x.n == 0) return;
  const Geometry g = around(shape, axis);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, uint8_t>::value) {
      switch (op) {
        case CumulativeOp::CumSum: return scan<T, false>(x.as<T>(), out.as<T>(), g, exclusive, reverse);
        case CumulativeOp::CumProd: return scan<T, true>(x.as<T>(), out.as<T>(), g, exclusive, reverse);
      }
    }
  });
}

void checkLinearScan(DType a, DType b, const Shape& shape, int64_t axis) {
  if (!isFloat(a) || a != b)
    invalid(std::string("linearScan: a and b must share a float datatype, got ") + dtypeName(a) + " and " + dtypeName(b));
  checkAxis("linearScan", shape, axis);
}

void linearScan(const Arr& a, const Arr& b, const Shape& shape, int64_t axis, bool reverse, const Arr& out) {
  if (b.n == 0) return;
  const Geometry g = around(shape, axis);
  if (b.dt == DType::F32) return linearScanT(a.as<float>(), b.as<float>(), out.as<float>(), g, reverse);
  linearScanT(a.as<double>(), b.as<double>(), out.as<double>(), g, reverse);
}

}  // namespace gs
