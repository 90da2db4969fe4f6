// Row-major GEMM, C = op(A) op(B) (or C += op(A) op(B) with `accumulate`), through CBLAS when linked, else the
// portable blocked kernel.
#pragma once
#include <cstdint>

namespace gs {
void gemmF32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate = false);
void gemmF64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, const double* B,
             int64_t ldb, double* C, int64_t ldc, bool accumulate = false);

// Kernels that split their own work across threads (a convolution's images) rather than threading each product ask a
// SplitScope how many threads the per-product policy grants them: OpenBLAS's thread count (at most `tasks`, and at
// most the cores other processes leave idle: native/idle_cores.h) when `work` = m*n*k summed over the kernel's
// products is large and no other product is running, else 1. Large products themselves are split the same way
// (native/gemm.cpp). The grant and
// the count of running products change together, so two kernels starting at once cannot both be granted every core.
// While a grant of more than one thread is held, every product runs on one thread: this kernel's, so its workers do
// not oversubscribe the cores, and those of other requests, as with any running product. A grant of one thread is
// given back at once, so the kernel's own products keep the usual per-product choice.
class SplitScope {
 public:
  SplitScope(double work, int64_t tasks);
  ~SplitScope();
  int workers() const { return workers_; }
  SplitScope(const SplitScope&) = delete;
  SplitScope& operator=(const SplitScope&) = delete;

 private:
  int workers_ = 1;
};

// A LAPACK or level-3 BLAS call other than gemm (native/linalg_solve.cpp): the same per-call thread choice as a
// product with m*n*k = `work` (all of OpenBLAS's threads when large and alone, else one).
class BlasCallScope {
 public:
  explicit BlasCallScope(double work);
  ~BlasCallScope();
  BlasCallScope(const BlasCallScope&) = delete;
  BlasCallScope& operator=(const BlasCallScope&) = delete;
};

template <typename T>
void gemmPortable(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B,
                  int64_t ldb, T* C, int64_t ldc, bool accumulate = false);
}  // namespace gs
