// Sorting along one axis: the indices of a stable sort (or of its first k entries, for top_k), with NaN larger than
// every number. The values are a take_along_axis of x by these indices, done by the caller.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels.h"

namespace gs {

Shape planSortIndices(DType dt, const Shape& shape, int64_t axis, int64_t k) {
  if (dt == DType::BOOL) invalid("sortIndices does not accept BOOL");
  numel(shape, "sortIndices shape");
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid("sortIndices: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
  const int64_t A = shape[size_t(axis)];
  if (k < 0 || k > A)
    invalid("sortIndices: k " + std::to_string(k) + " is outside [0, " + std::to_string(A) + "] for axis " +
            std::to_string(axis) + " of " + fmtShape(shape));
  Shape out = shape;
  out[size_t(axis)] = k;
  return out;
}

namespace {
template <typename T> struct Entry {
  T v;
  int64_t i;
};

template <typename T> bool isNaN(T v) {
  if constexpr (std::is_floating_point<T>::value) return std::isnan(v);
  return false;
}

// A strict total order: by value (NaN above every number, NaNs equal among themselves), ties by original position
// whatever the direction. So any sorting algorithm gives the stable order, and a partial sort gives its first k.
template <typename T> struct Before {
  bool descending;
  bool operator()(const Entry<T>& a, const Entry<T>& b) const {
    const bool na = isNaN(a.v), nb = isNaN(b.v);
    if (na || nb) {
      if (na && nb) return a.i < b.i;
      return descending ? na : nb;
    }
    if (a.v != b.v) return descending ? a.v > b.v : a.v < b.v;
    return a.i < b.i;
  }
};
}  // namespace

void sortIndices(const Arr& x, const Shape& shape, int64_t axis, bool descending, int64_t k, const Arr& out) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); d++) inner *= shape[d];
  const int64_t A = shape[size_t(axis)];
  int64_t* o = out.as<int64_t>();
  if (k == 0 || outer * inner == 0) return;
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.as<T>();
    std::vector<Entry<T>> line(static_cast<size_t>(A));
    const Before<T> before{descending};
    for (int64_t po = 0; po < outer; po++)
      for (int64_t pi = 0; pi < inner; pi++) {
        const T* s = src + po * A * inner + pi;
        for (int64_t a = 0; a < A; a++) line[size_t(a)] = {s[a * inner], a};
        if (k == A)
          std::sort(line.begin(), line.end(), before);
        else
          std::partial_sort(line.begin(), line.begin() + k, line.end(), before);
        int64_t* d = o + po * k * inner + pi;
        for (int64_t j = 0; j < k; j++) d[j * inner] = line[size_t(j)].i;
      }
  });
}

}  // namespace gs
