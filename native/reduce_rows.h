// Row kernels of reduce.cpp. float32 sums accumulate in double (more accurate than pairwise float); float64 sums are
// pairwise over 128-element blocks, as NumPy does.
#pragma once
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "vecmath.h"

namespace gs {

template <typename T> using Acc = std::conditional_t<kIsFloat<T>, double, int64_t>;

inline double pairwiseSum(const double* p, int64_t n) {
  if (n <= 128) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; k++) s[k] += p[i + k];
    double r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += p[i];
    return r;
  }
  int64_t h = (n / 2) & ~int64_t(7);
  return pairwiseSum(p, h) + pairwiseSum(p + h, n - h);
}

inline double sumF32(const float* p, int64_t n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += double(p[i + k]);
  double r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) r += double(p[i]);
  return r;
}

template <typename T> Acc<T> sumRow(const T* p, int64_t n) {
  if constexpr (std::is_same<T, float>::value) return sumF32(p, n);
  else if constexpr (std::is_same<T, double>::value) return pairwiseSum(p, n);
  else {
    uint64_t s = 0;  // integer sums wrap like the output type does
    for (int64_t i = 0; i < n; i++) s += uint64_t(int64_t(p[i]));
    return int64_t(s);
  }
}

// max/min of a row, NaN if any element is NaN. Eight independent lanes (and NaN tracked beside them) break the
// compare-select dependency chain; a plain `m = v > m ? v : m` loop measured ~1.5 ns per element.
template <typename T> T extremeRow(bool isMax, const T* p, int64_t n) {
  if constexpr (kIsFloat<T>) {
    T m[8];
    int nan[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 8; k++) m[k] = p[0];
    int64_t i = 0;
    if (isMax) {
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
          T v = p[i + k];
          nan[k] |= v != v;
          m[k] = v > m[k] ? v : m[k];
        }
    } else {
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
          T v = p[i + k];
          nan[k] |= v != v;
          m[k] = v < m[k] ? v : m[k];
        }
    }
    T r = m[0];
    bool anyNan = false;
    for (int k = 0; k < 8; k++) {
      anyNan = anyNan || nan[k] || m[k] != m[k];
      r = isMax ? (m[k] > r ? m[k] : r) : (m[k] < r ? m[k] : r);
    }
    for (; i < n; i++) {
      T v = p[i];
      anyNan = anyNan || v != v;
      r = isMax ? (v > r ? v : r) : (v < r ? v : r);
    }
    return anyNan ? std::numeric_limits<T>::quiet_NaN() : r;
  } else {
    T m = p[0];
    for (int64_t i = 1; i < n; i++) m = isMax ? (p[i] > m ? p[i] : m) : (p[i] < m ? p[i] : m);
    return m;
  }
}

template <typename T> T reduceRow(ReduceOp op, const T* p, int64_t n) {
  switch (op) {
    case ReduceOp::Sum: return T(sumRow(p, n));
    case ReduceOp::Mean:
      if constexpr (kIsFloat<T>) return T(double(sumRow(p, n)) / double(n));
      else return T(0);
    case ReduceOp::Max: return extremeRow(true, p, n);
    case ReduceOp::Min: return extremeRow(false, p, n);
    case ReduceOp::Prod: {
      if constexpr (kIsFloat<T>) {
        double r = 1;
        for (int64_t i = 0; i < n; i++) r *= double(p[i]);
        return T(r);
      } else {
        uint64_t r = 1;
        for (int64_t i = 0; i < n; i++) r *= uint64_t(int64_t(p[i]));
        return T(int64_t(r));
      }
    }
    case ReduceOp::LogSumExp: {
      if constexpr (kIsFloat<T>) {
        if (n == 0) return -std::numeric_limits<T>::infinity();
        T m = extremeRow(true, p, n);
        if (m != m || std::isinf(m)) return m;  // NaN, all -Inf (-> -Inf) or some +Inf (-> +Inf)
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += std::exp(double(p[i]) - double(m));
        return T(double(m) + std::log(s));
      } else {
        return T(0);
      }
    }
  }
  return T(0);
}

// Sum and mean over any axes without a transpose. The shape is merged into alternating runs of reduced and kept axes
// (axes of size 1 dropped); the innermost run is walked as contiguous rows: a reduced one is summed per row (sumRow)
// into its output element, a kept one is added element by element into its output row. Reducing N and the spatial
// axes of (N, C, H, W) is then C * N rows of H * W, with no copy of x. Returns false when the old path should run
// (other ops, empty tensors, or nothing to gain: the reduced axes already trailing).
template <typename T>
bool reduceByRuns(ReduceOp op, const T* src, const Shape& shape, const std::vector<bool>& red, T* out) {
  if (op != ReduceOp::Sum && op != ReduceOp::Mean) return false;
  if constexpr (!kIsFloat<T>) {
    if (op != ReduceOp::Sum) return false;
  }
  std::vector<int64_t> size;
  std::vector<bool> isRed;
  int64_t R = 1, K = 1;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return false;
    if (shape[d] == 1) continue;
    (red[d] ? R : K) *= shape[d];
    if (!size.empty() && isRed.back() == red[d]) size.back() *= shape[d];
    else { size.push_back(shape[d]); isRed.push_back(red[d]); }
  }
  if (size.size() < 2 || (size.size() == 2 && isRed[1])) return false;  // all one kind, or [K, R]: plain rows
  const size_t m = size.size();
  // output stride of each kept run (0 for reduced runs)
  std::vector<int64_t> ostride(m, 0);
  for (int64_t s = 1, g = int64_t(m) - 1; g >= 0; g--)
    if (!isRed[size_t(g)]) { ostride[size_t(g)] = s; s *= size[size_t(g)]; }
  const int64_t L = size[m - 1];
  const bool innerRed = isRed[m - 1];
  using A = std::conditional_t<kIsFloat<T>, double, uint64_t>;
  std::vector<A> acc(size_t(K), A(0));
  std::vector<int64_t> idx(m - 1, 0);
  int64_t o = 0;  // output offset of the current row
  const int64_t rows = (R * K) / L;
  for (int64_t row = 0; row < rows; row++) {
    const T* p = src + row * L;
    if (innerRed) {
      if constexpr (kIsFloat<T>) acc[size_t(o)] += double(sumRow(p, L));
      else acc[size_t(o)] += uint64_t(sumRow(p, L));
    } else {
      A* a = acc.data() + o;
      for (int64_t k = 0; k < L; k++) {
        if constexpr (kIsFloat<T>) a[k] += double(p[k]);
        else a[k] += uint64_t(int64_t(p[k]));
      }
    }
    // odometer over the outer runs, keeping the output offset in step
    for (int64_t g = int64_t(m) - 2; g >= 0; g--) {
      const size_t u = size_t(g);
      o += ostride[u];
      if (++idx[u] < size[u]) break;
      o -= ostride[u] * size[u];
      idx[u] = 0;
    }
  }
  if constexpr (kIsFloat<T>) {
    const double scale = op == ReduceOp::Mean ? 1.0 / double(R) : 1.0;
    for (int64_t k = 0; k < K; k++) out[k] = T(acc[size_t(k)] * scale);
  } else {
    for (int64_t k = 0; k < K; k++) out[k] = T(int64_t(acc[size_t(k)]));
  }
  return true;
}

// logsumexp of `rows` contiguous rows of length n: max-shift, SIMD exp into a scratch row, double sum.
template <typename T> void logSumExpRows(const T* src, int64_t rows, int64_t n, T* out) {
  std::vector<T> scratch(static_cast<size_t>(n));
  T* e = scratch.data();
  for (int64_t r = 0; r < rows; r++) {
    const T* p = src + r * n;
    T m = extremeRow(true, p, n);
    if (m != m || std::isinf(m)) {  // NaN, all -Inf (-> -Inf) or some +Inf (-> +Inf)
      out[r] = m;
      continue;
    }
    for (int64_t i = 0; i < n; i++) e[i] = p[i] - m;
    bool vec;
    if constexpr (std::is_same<T, float>::value) vec = vecUnaryF32(UnaryOp::Exp, e, e, n);
    else vec = vecUnaryF64(UnaryOp::Exp, e, e, n);
    if (!vec)
      for (int64_t i = 0; i < n; i++) e[i] = std::exp(e[i]);
    double s;
    if constexpr (std::is_same<T, float>::value) s = sumF32(e, n);
    else s = pairwiseSum(e, n);
    out[r] = T(double(m) + std::log(s));
  }
}

// One softmax row of length n with element stride `st` (max-shifted, fused). Contiguous rows compute exp(x - m)
// into the output with the SIMD exp (identical to unary exp), then sum in double and scale (or subtract the log).
template <typename T> void softmaxRow(const T* x, T* y, int64_t n, int64_t st, bool log) {
  if (n == 0) return;
  T m;
  if (st == 1) {
    m = extremeRow(true, x, n);
  } else {
    m = x[0];
    for (int64_t i = 1; i < n; i++) {
      T v = x[i * st];
      if (v != v || v > m) m = v;
      if (m != m) break;
    }
  }
  if (m != m) {
    for (int64_t i = 0; i < n; i++) y[i * st] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  double s = 0;
  if (st == 1) {
    // All -Inf (m = -Inf) gives NaN rows through -Inf - -Inf, as the unfused formula and PyTorch do.
    for (int64_t i = 0; i < n; i++) y[i] = x[i] - m;
    bool vec;
    if constexpr (std::is_same<T, float>::value) vec = vecUnaryF32(UnaryOp::Exp, y, y, n);
    else vec = vecUnaryF64(UnaryOp::Exp, y, y, n);
    if (!vec)
      for (int64_t i = 0; i < n; i++) y[i] = std::exp(y[i]);
    if constexpr (std::is_same<T, float>::value) s = sumF32(y, n);
    else s = pairwiseSum(y, n);
  } else {
    for (int64_t i = 0; i < n; i++) {
      T e = std::exp(x[i * st] - m);
      y[i * st] = e;
      s += double(e);
    }
  }
  if (log) {
    T ls = T(std::log(s));
    for (int64_t i = 0; i < n; i++) y[i * st] = x[i * st] - m - ls;
  } else {
    T inv = T(1.0 / s);
    for (int64_t i = 0; i < n; i++) y[i * st] *= inv;
  }
}

}  // namespace gs
