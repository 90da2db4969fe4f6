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

// A strict total order on numbers: by value, ties by original position whatever the direction. So any sorting
// algorithm gives the stable order, and a partial sort gives its first k. NaNs never reach it: they are moved to
// their end of the line first (in position order), which is where a NaN-largest order puts them.
template <typename T, bool Descending> struct Before {
  bool operator()(const Entry<T>& a, const Entry<T>& b) const {
    if (a.v != b.v) return Descending ? a.v > b.v : a.v < b.v;
    return a.i < b.i;
  }
};

// Reads one line of x (A entries `stride` apart) into `line` and sorts its first k entries in the order above, with
// NaN larger than every number: the numbers are gathered in front and the NaNs behind them, both in position order,
// and the NaNs rotated to the front when descending; only the numbers are then sorted.
template <typename T, bool Descending>
void sortLine(const T* s, int64_t A, int64_t stride, int64_t k, std::vector<Entry<T>>& line) {
  int64_t numbers = 0;
  if constexpr (std::is_floating_point<T>::value) {
    int64_t nans = A;
    for (int64_t a = A; a-- > 0;) {
      const T v = s[a * stride];
      if (std::isnan(v)) line[size_t(--nans)] = {v, a};
    }
    for (int64_t a = 0; a < A; a++) {
      const T v = s[a * stride];
      if (!std::isnan(v)) line[size_t(numbers++)] = {v, a};
    }
    if (Descending && numbers < A) std::rotate(line.begin(), line.begin() + numbers, line.end());
  } else {
    for (int64_t a = 0; a < A; a++) line[size_t(a)] = {s[a * stride], a};
    numbers = A;
  }
  // descending: the NaNs come first and may already fill all k entries
  const int64_t lead = Descending ? A - numbers : 0;
  if (k <= lead) return;
  auto first = line.begin() + lead, last = first + numbers;
  auto stop = first + std::min(k - lead, numbers);
  if (stop == last)
    std::sort(first, last, Before<T, Descending>{});
  else
    std::partial_sort(first, stop, last, Before<T, Descending>{});
}
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
    for (int64_t po = 0; po < outer; po++)
      for (int64_t pi = 0; pi < inner; pi++) {
        const T* s = src + po * A * inner + pi;
        if (descending)
          sortLine<T, true>(s, A, inner, k, line);
        else
          sortLine<T, false>(s, A, inner, k, line);
        int64_t* d = o + po * k * inner + pi;
        for (int64_t j = 0; j < k; j++) d[j * inner] = line[size_t(j)].i;
      }
  });
}

}  // namespace gs
