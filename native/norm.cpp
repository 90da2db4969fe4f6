// Row normalization for layer_norm, rms_norm and group_norm: each row of `cols` contiguous elements becomes
// (x - mean) / sqrt(var + epsilon) (biased variance), or x / sqrt(mean(x^2) + epsilon) without centering. Statistics
// are accumulated in double, two passes (mean, then squared deviations), so float32 rows keep their precision.
#include <cmath>

#include "kernels.h"

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
