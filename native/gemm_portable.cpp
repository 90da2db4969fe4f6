// Cache-blocked GEMM used only when no CBLAS is linked (and for integer matmul). B panels are packed so the inner
// loop is a contiguous axpy the compiler vectorises; integer arithmetic wraps.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "gemm.h"

namespace gs {

namespace {
constexpr int64_t kBlockK = 256, kBlockN = 512;
template <typename T> inline T madd(T c, T a, T b) {
  if constexpr (std::is_integral<T>::value) {
    using U = std::make_unsigned_t<T>;
    return T(U(c) + U(a) * U(b));
  } else {
    return c + a * b;
  }
}
}  // namespace

template <typename T>
void gemmPortable(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B,
                  int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t i = 0; i < m; i++) std::fill(C + i * ldc, C + i * ldc + n, T(0));
  if (k == 0) return;
  std::vector<T> pack(size_t(std::min(k, kBlockK) * std::min(n, kBlockN)));
  for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
    const int64_t nb = std::min(kBlockN, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
      const int64_t kb = std::min(kBlockK, k - p0);
      for (int64_t p = 0; p < kb; p++)
        for (int64_t j = 0; j < nb; j++)
          pack[size_t(p * nb + j)] = tb ? B[(j0 + j) * ldb + (p0 + p)] : B[(p0 + p) * ldb + (j0 + j)];
      for (int64_t i = 0; i < m; i++) {
        T* c = C + i * ldc + j0;
        for (int64_t p = 0; p < kb; p++) {
          const T a = ta ? A[(p0 + p) * lda + i] : A[i * lda + (p0 + p)];
          const T* b = pack.data() + p * nb;
          for (int64_t j = 0; j < nb; j++) c[j] = madd(c[j], a, b[j]);
        }
      }
    }
  }
}

template void gemmPortable<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                                  int64_t, float*, int64_t, bool);
template void gemmPortable<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*,
                                   int64_t, double*, int64_t, bool);
template void gemmPortable<int32_t>(bool, bool, int64_t, int64_t, int64_t, const int32_t*, int64_t, const int32_t*,
                                    int64_t, int32_t*, int64_t, bool);
template void gemmPortable<int64_t>(bool, bool, int64_t, int64_t, int64_t, const int64_t*, int64_t, const int64_t*,
                                    int64_t, int64_t*, int64_t, bool);

}  // namespace gs
