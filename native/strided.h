// n-d strided iteration shared by broadcasting, copies and reductions. Callers collapse dims first so the inner run
// is as long as possible; the callback then sees one row at a time with its inner strides.
#pragma once
#include <array>
#include <cstring>

#include "common.h"

namespace gs {

// Calls f(offsets, n, innerStrides) for every row of the last dim. `strides[k]` are element strides for operand k.
template <size_t K, typename F>
void forEachRow(const Shape& shape, const std::array<const Shape*, K>& strides, F&& f) {
  const size_t r = shape.size();
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (total == 0) return;
  const int64_t n = shape[r - 1];
  std::array<int64_t, K> off{}, inner{};
  for (size_t k = 0; k < K; k++) inner[k] = (*strides[k])[r - 1];
  std::vector<int64_t> idx(r, 0);
  const int64_t rows = total / n;
  for (int64_t row = 0; row < rows; row++) {
    f(off, n, inner);
    for (size_t d = r - 1; d-- > 0;) {
      for (size_t k = 0; k < K; k++) off[k] += (*strides[k])[d];
      if (++idx[d] < shape[d]) break;
      for (size_t k = 0; k < K; k++) off[k] -= (*strides[k])[d] * shape[d];
      idx[d] = 0;
    }
  }
}

// dst[i] = src[i] elementwise over `shape` with arbitrary (possibly negative or zero) strides.
template <typename T>
void copyStridedT(const T* src, Shape shape, Shape ss, T* dst, Shape ds) {
  collapseDims(shape, {&ss, &ds});
  forEachRow<2>(shape, {&ss, &ds}, [&](const std::array<int64_t, 2>& o, int64_t n, const std::array<int64_t, 2>& st) {
    const T* s = src + o[0];
    T* d = dst + o[1];
    if (st[0] == 1 && st[1] == 1) {
      std::memcpy(d, s, size_t(n) * sizeof(T));
    } else if (st[0] == 0) {
      const T v = *s;
      for (int64_t i = 0; i < n; i++) d[i * st[1]] = v;
    } else {
      for (int64_t i = 0; i < n; i++) d[i * st[1]] = s[i * st[0]];
    }
  });
}

// Byte-size generic copy: the element type does not matter for moving data.
void copyStrided(size_t elemSize, const void* src, const Shape& shape, const Shape& ss, void* dst, const Shape& ds);

}  // namespace gs
