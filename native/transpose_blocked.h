// Cache-blocked transpose: when the output's inner dim is strided in the input, copy square tiles between the
// input's contiguous dim and the output's inner dim so both sides touch whole cache lines.
#pragma once
#include <algorithm>

#include "strided.h"

namespace gs {

template <typename T>
void transposeTiles(const T* src, const Shape& shape, const Shape& ss, T* dst, const Shape& ds, size_t j) {
  // 16x16 tiles: larger ones thrash L1 sets when the stride is a multiple of 4 KiB (measured on 1024x1024).
  constexpr int64_t kTile = 16;
  const size_t last = shape.size() - 1;
  const int64_t nj = shape[j], nc = shape[last], sc = ss[last], dj = ds[j];
  Shape outer = shape, so = ss, dso = ds;
  outer[j] = 1;
  outer[last] = 1;
  forEachRow<2>(outer, {&so, &dso}, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>&) {
    (void)n;
    const T* s = src + off[0];
    T* d = dst + off[1];
    for (int64_t i0 = 0; i0 < nj; i0 += kTile) {
      const int64_t ie = std::min(nj, i0 + kTile);
      for (int64_t c0 = 0; c0 < nc; c0 += kTile) {
        const int64_t ce = std::min(nc, c0 + kTile);
        for (int64_t i = i0; i < ie; i++)
          for (int64_t c = c0; c < ce; c++) d[i * dj + c] = s[i + c * sc];
      }
    }
  });
}

// Returns false when tiling does not apply (the plain strided copy is already cache friendly).
inline bool transposeBlocked(size_t es, const void* src, const Shape& shape, const Shape& ss, void* dst,
                             const Shape& ds) {
  const size_t r = shape.size();
  if (r < 2 || ss[r - 1] == 1 || ds[r - 1] != 1) return false;
  size_t j = r;
  for (size_t d = 0; d + 1 < r; d++)
    if (ss[d] == 1) j = d;
  if (j == r || shape[j] < 8 || shape[r - 1] < 8) return false;
  switch (es) {
    case 1: transposeTiles(static_cast<const uint8_t*>(src), shape, ss, static_cast<uint8_t*>(dst), ds, j); break;
    case 4: transposeTiles(static_cast<const uint32_t*>(src), shape, ss, static_cast<uint32_t*>(dst), ds, j); break;
    default: transposeTiles(static_cast<const uint64_t*>(src), shape, ss, static_cast<uint64_t*>(dst), ds, j);
  }
  return true;
}

}  // namespace gs
