// Row normalization for layer_norm, rms_norm and group_norm: each row of `cols` contiguous elements becomes
// (x - mean) / sqrt(var + epsilon) (biased variance), or x / sqrt(mean(x^2) + epsilon) without centering. Statistics
// are accumulated in double, two passes (mean, then squared deviations), so float32 rows keep their precision.
#include <cmath>

#include "kernels.h"
#include "reduce_rows.h"

namespace gs {

namespace {
struct Rows {
  int64_t rows = 1, cols = 1;
};
Rows splitRows(const Shape& shape, int64_t axis) {
  Rows r;
  for (int64_t d = 0; d < axis; d++) r.rows *= shape[size_t(d)];
  for (size_t d = size_t(axis); d < shape.size(); d++) r.cols *= shape[d];
  return r;
}
}  // namespace

void checkNormalize(DType dt, const Shape& shape, int64_t axis, double epsilon) {
  if (!isFloat(dt)) invalid(std::string("normalize does not accept ") + dtypeName(dt));
  if (axis < 0 || axis > int64_t(shape.size()))
    invalid("normalize: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) invalid("normalize: epsilon must be a finite non-negative number");
  numel(shape, "normalize shape");
}

void normalize(const Arr& x, const Shape& shape, int64_t axis, double epsilon, bool center, const Arr& out) {
  if (x.n == 0) return;
  const Rows r = splitRows(shape, axis);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      const T* px = x.as<T>();
      T* po = out.as<T>();
      for (int64_t i = 0; i < r.rows; i++) {
        const T* row = px + i * r.cols;
        T* dst = po + i * r.cols;
        double mean = 0;
        if (center) {
          for (int64_t j = 0; j < r.cols; j++) mean += double(row[j]);
          mean /= double(r.cols);
        }
        double ss = 0;
        for (int64_t j = 0; j < r.cols; j++) {
          const double c = double(row[j]) - mean;
          ss += c * c;
        }
        const double inv = 1.0 / std::sqrt(ss / double(r.cols) + epsilon);
        for (int64_t j = 0; j < r.cols; j++) dst[j] = T((double(row[j]) - mean) * inv);
      }
    }
  });
}

}  // namespace gs

// ---- batch_norm with batch statistics (training) ----
// x is (N, C, S): channel c is N contiguous segments of S elements. Each kernel walks one channel at a time, so its
// passes (mean, variance, the sums the gradients need, the output) reread a slice that stays in cache, where the op
// written with broadcasting kernels made a dozen passes over the whole tensor.
namespace gs {

namespace {
struct Channels {
  int64_t N = 1, C = 1, S = 1;
};

Channels channelsOf(const Shape& shape) {
  Channels k;
  k.N = shape[0];
  k.C = shape[1];
  for (size_t d = 2; d < shape.size(); d++) k.S *= shape[d];
  return k;
}

// Σ (p - m)² and Σ q (p - m) over n elements, in double with eight independent sums (one running sum is a chain of
// dependent additions, several times slower; the eight lanes vectorize).
template <typename T> double sumSqDev(const T* p, int64_t n, double m) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) {
      const double d = double(p[j + k]) - m;
      s[k] += d * d;
    }
  double r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; j < n; j++) r += (double(p[j]) - m) * (double(p[j]) - m);
  return r;
}

template <typename T> double sumProdDev(const T* q, const T* p, int64_t n, double m) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) s[k] += double(q[j + k]) * (double(p[j + k]) - m);
  double r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; j < n; j++) r += double(q[j]) * (double(p[j]) - m);
  return r;
}

// The mean and 1 / sqrt(biased variance + epsilon) of channel c, in double, two passes (as `normalize`).
template <typename T> void channelMoments(const T* x, const Channels& k, int64_t c, double epsilon, double& mean, double& r) {
  const double n = double(k.N * k.S);
  double s = 0;
  for (int64_t i = 0; i < k.N; i++) s += double(sumRow(x + (i * k.C + c) * k.S, k.S));
  mean = s / n;
  double ss = 0;
  for (int64_t i = 0; i < k.N; i++) ss += sumSqDev(x + (i * k.C + c) * k.S, k.S, mean);
  r = 1.0 / std::sqrt(ss / n + epsilon);
}

// Σ g and Σ g (x - mean) over channel c.
template <typename T> void channelGradSums(const T* x, const T* g, const Channels& k, int64_t c, double mean, double& sg, double& sgx) {
  sg = 0;
  sgx = 0;
  for (int64_t i = 0; i < k.N; i++) {
    const T* px = x + (i * k.C + c) * k.S;
    const T* pg = g + (i * k.C + c) * k.S;
    sg += double(sumRow(pg, k.S));
    sgx += sumProdDev(pg, px, k.S, mean);
  }
}

// out = x * a + g * b + c0 over channel c (g may be null).
template <typename T> void channelAffine(const T* x, const T* g, const Channels& k, int64_t c, T a, T b, T c0, T* out) {
  for (int64_t i = 0; i < k.N; i++) {
    const int64_t off = (i * k.C + c) * k.S;
    const T* px = x + off;
    T* po = out + off;
    if (g == nullptr) {
      for (int64_t j = 0; j < k.S; j++) po[j] = px[j] * a + c0;
    } else {
      const T* pg = g + off;
      for (int64_t j = 0; j < k.S; j++) po[j] = px[j] * a + pg[j] * b + c0;
    }
  }
}
}  // namespace

void checkBatchNorm(DType dt, const Shape& shape, double epsilon) {
  if (!isFloat(dt)) invalid(std::string("batch norm does not accept ") + dtypeName(dt));
  if (shape.size() < 2) invalid("batch norm: x must be (N, C, *spatial), got rank " + std::to_string(shape.size()));
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) invalid("batch norm: epsilon must be a finite non-negative number");
  numel(shape, "batch norm shape");
}

void batchNormTrain(const Arr& x, const Shape& shape, const Arr& scale, const Arr& bias, double epsilon, const Arr& y) {
  if (x.n == 0) return;
  const Channels k = channelsOf(shape);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      for (int64_t c = 0; c < k.C; c++) {
        double mean, r;
        channelMoments(x.as<T>(), k, c, epsilon, mean, r);
        // y = (x - mean) * scale * r + bias, as x * alpha + (bias - mean * alpha)
        const double alpha = double(scale.as<T>()[c]) * r;
        channelAffine<T>(x.as<T>(), nullptr, k, c, T(alpha), T(0), T(double(bias.as<T>()[c]) - mean * alpha), y.as<T>());
      }
    }
  });
}

void batchNormGrad(const Arr& x, const Shape& shape, const Arr& scale, const Arr& g, double epsilon, const Arr& dx) {
  if (x.n == 0) return;
  const Channels k = channelsOf(shape);
  const double n = double(k.N * k.S);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      for (int64_t c = 0; c < k.C; c++) {
        double mean, r, sg, sgx;
        channelMoments(x.as<T>(), k, c, epsilon, mean, r);
        channelGradSums(x.as<T>(), g.as<T>(), k, c, mean, sg, sgx);
        // scale r (g - mean(g) - xhat mean(g xhat)) with xhat = (x - mean) r, as x * a + g * b + c0
        const double sr = double(scale.as<T>()[c]) * r;
        const double a = -sr * r * r * sgx / n;
        channelAffine<T>(x.as<T>(), g.as<T>(), k, c, T(a), T(sr), T(-sr * sg / n - a * mean), dx.as<T>());
      }
    }
  });
}

void batchNormScaleGrad(const Arr& x, const Shape& shape, const Arr& g, double epsilon, const Arr& out) {
  const Channels k = channelsOf(shape);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      for (int64_t c = 0; c < k.C; c++) {
        if (k.N * k.S == 0) {
          out.as<T>()[c] = T(0);
          continue;
        }
        double mean, r, sg, sgx;
        channelMoments(x.as<T>(), k, c, epsilon, mean, r);
        channelGradSums(x.as<T>(), g.as<T>(), k, c, mean, sg, sgx);
        out.as<T>()[c] = T(sgx * r);  // Σ g xhat
      }
    }
  });
}

}  // namespace gs
