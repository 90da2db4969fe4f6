// The BLAS seam: everything else calls gemmF32/gemmF64 and never sees cblas.h.
#include "gemm.h"

#include <string>

#include "kernels.h"

#if GRADSERVE_CBLAS
#include <cblas.h>
#endif
#if GRADSERVE_OPENBLAS
extern "C" {
char* openblas_get_config(void);
int openblas_get_num_threads(void);
}
#endif

namespace gs {

void gemmF32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc) {
#if GRADSERVE_CBLAS
  if (m > 0 && n > 0 && k > 0) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
                1.0f, A, int(lda), B, int(ldb), 0.0f, C, int(ldc));
    return;
  }
#endif
  gemmPortable<float>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
}

void gemmF64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, const double* B,
             int64_t ldb, double* C, int64_t ldc) {
#if GRADSERVE_CBLAS
  if (m > 0 && n > 0 && k > 0) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
                1.0, A, int(lda), B, int(ldb), 0.0, C, int(ldc));
    return;
  }
#endif
  gemmPortable<double>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
}

BlasInfo blasInfo() {
#if GRADSERVE_OPENBLAS
  std::string cfg = openblas_get_config();
  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." -> "OpenBLAS 0.3.21 (cblas)"
  size_t sp = cfg.find(' ', cfg.find(' ') + 1);
  return {cfg.substr(0, sp) + " (cblas)", true, openblas_get_num_threads()};
#elif GRADSERVE_CBLAS
  return {GRADSERVE_CBLAS_NAME " (cblas)", true, 0};
#else
  return {"portable gemm (no CBLAS found: slow)", false, 1};
#endif
}

}  // namespace gs
