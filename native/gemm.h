// Row-major GEMM, C = op(A) op(B) (or C += op(A) op(B) with `accumulate`), through CBLAS when linked, else the
// portable blocked kernel.
#pragma once
#include <cstdint>

namespace gs {
void gemmF32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate = false);
void gemmF64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, const double* B,
             int64_t ldb, double* C, int64_t ldc, bool accumulate = false);

// Kernels that split their own work across threads (a convolution's images) rather than threading each product:
// `splitWorkers` is how many threads the adaptive policy grants to a kernel of `work` = m*n*k summed over its
// products (OpenBLAS's thread count when the work is large and no other product is running, else 1). While a
// SplitScope is alive every product runs on one thread: this kernel's, so its workers do not oversubscribe the cores,
// and those of other requests, as with any running product.
int splitWorkers(double work);
class SplitScope {
 public:
  SplitScope();
  ~SplitScope();
  SplitScope(const SplitScope&) = delete;
  SplitScope& operator=(const SplitScope&) = delete;
};

template <typename T>
void gemmPortable(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B,
                  int64_t ldb, T* C, int64_t ldc, bool accumulate = false);
}  // namespace gs
