// Internal to the LAPACK kernels (native/linalg_solve.cpp, native/linalg_lu.cpp): the Fortran LAPACK and cblas
// symbols of the linked OpenBLAS behind one template per precision, the per-call thread choice, and the loop over the
// matrices of a batch. Nothing here factors a matrix by hand.
#pragma once
#include <algorithm>
#include <optional>
#include <string>

#include "common.h"
#include "gemm.h"
#include "parallel.h"

#ifndef GRADSERVE_LAPACK
#define GRADSERVE_LAPACK 0
#endif

#if GRADSERVE_LAPACK
#include <cblas.h>
extern "C" {
// Fortran LAPACK (LP64 integers); the trailing size_t arguments are the hidden lengths of character arguments.
void sgetrf_(const int* m, const int* n, float* a, const int* lda, int* ipiv, int* info);
void dgetrf_(const int* m, const int* n, double* a, const int* lda, int* ipiv, int* info);
void sgetrs_(const char* trans, const int* n, const int* nrhs, const float* a, const int* lda, const int* ipiv, float* b,
             const int* ldb, int* info, size_t);
void dgetrs_(const char* trans, const int* n, const int* nrhs, const double* a, const int* lda, const int* ipiv,
             double* b, const int* ldb, int* info, size_t);
void sgetri_(const int* n, float* a, const int* lda, const int* ipiv, float* work, const int* lwork, int* info);
void dgetri_(const int* n, double* a, const int* lda, const int* ipiv, double* work, const int* lwork, int* info);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
void sgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, float* a, const int* lda, float* s, float* u,
             const int* ldu, float* vt, const int* ldvt, float* work, const int* lwork, int* info, size_t, size_t);
void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* info, size_t,
             size_t);
void sgelsd_(const int* m, const int* n, const int* nrhs, float* a, const int* lda, float* b, const int* ldb, float* s,
             const float* rcond, int* rank, float* work, const int* lwork, int* iwork, int* info);
void dgelsd_(const int* m, const int* n, const int* nrhs, double* a, const int* lda, double* b, const int* ldb,
             double* s, const double* rcond, int* rank, double* work, const int* lwork, int* iwork, int* info);
}
#endif

namespace gs::la {

inline Shape batchOf(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// "the matrix" or "the matrix at batch index [1, 0]".
inline std::string whichMatrix(const Shape& batch, int64_t i) {
  if (batch.empty()) return "the matrix";
  Shape idx(batch.size());
  for (size_t d = batch.size(); d-- > 0;) {
    idx[d] = batch[d] == 0 ? 0 : i % batch[d];
    i = batch[d] == 0 ? 0 : i / batch[d];
  }
  return "the matrix at batch index " + fmtShape(idx);
}

// A LAPACK call below this many flops runs on one thread (CallScope below). Inside OpenBLAS 0.3.21 the small calls do
// not all choose one thread themselves: at its process-wide count of 2, getrs of a 16 x 16 LU with 16 right-hand
// sides took 9-19 us instead of 3 us, potrf of n = 64 25-35 us instead of 11-19 us (measured, 2000 calls each).
constexpr double kSmallCall = double(1 << 21);

// What a LAPACK call on a small matrix costs besides its flops (argument checks, workspace, and the per-column BLAS
// calls of the unblocked kernels small matrices go to), counted as flops of a large product for the split decision:
// 1024 potrf of n = 16 (1.4 M flops in all) take 1.1-2.0 ms on one thread here, as long as a product of 2^24
// multiply-adds, the size from which a product is split. A batch's work for forEachMatrix is lapackWork of its flops.
constexpr double kCallWork = double(1 << 14);
inline double lapackWork(int64_t count, double flops) { return flops + double(count) * kCallWork; }

// Runs body(i) for every matrix i < count, split across the threads a SplitScope grants for `work` flops in all.
// When the calls of one matrix are small (work / count < kSmallCall), OpenBLAS is set to one thread once for the
// whole loop (the calls' own CallScopes are then skipped). body returns a failure message (empty: fine) with its code;
// the failure of the lowest index is thrown, whatever the threads (parallelFor).
template <typename F> void forEachMatrix(int64_t count, double work, F&& body) {
  SplitScope split(work, count);
  std::optional<BlasCallScope> oneThread;
  if (count > 0 && work / double(count) < kSmallCall) oneThread.emplace(0.0);
  parallelFor(count, split.workers(), [&](int, int64_t i) {
    ErrCode code = ErrCode::InvalidArgument;
    const std::string msg = body(i, code);
    if (!msg.empty()) fail(code, msg);
  });
}

#if GRADSERVE_LAPACK
template <typename T> struct Lapack;
template <> struct Lapack<float> {
  static void getrf(int n, float* a, int* ipiv, int* info) { sgetrf_(&n, &n, a, &n, ipiv, info); }
  static void getrs(char t, int n, int k, const float* a, const int* ipiv, float* b, int* info) {
    sgetrs_(&t, &n, &k, a, &n, ipiv, b, &n, info, 1);
  }
  static void getri(int n, float* a, const int* ipiv, float* w, int lw, int* info) { sgetri_(&n, a, &n, ipiv, w, &lw, info); }
  static void potrf(char u, int n, float* a, int* info) { spotrf_(&u, &n, a, &n, info, 1); }
  static void gesvd(int n, float* a, float* s, float* u, float* vt, float* w, int lw, int* info) {
    const char j = 'A';
    sgesvd_(&j, &j, &n, &n, a, &n, s, u, &n, vt, &n, w, &lw, info, 1, 1);
  }
  static void gelsd(int m, int n, int k, float* a, float* b, int ldb, float* s, float rcond, int* rank, float* w, int lw,
                    int* iw, int* info) {
    sgelsd_(&m, &n, &k, a, &m, b, &ldb, s, &rcond, rank, w, &lw, iw, info);
  }
  static void trsm(bool left, bool lower, bool unit, int m, int n, const float* a, int lda, float* b, int ldb) {
    cblas_strsm(CblasRowMajor, left ? CblasLeft : CblasRight, lower ? CblasLower : CblasUpper, CblasNoTrans,
                unit ? CblasUnit : CblasNonUnit, m, n, 1.0f, a, lda, b, ldb);
  }
};
template <> struct Lapack<double> {
  static void getrf(int n, double* a, int* ipiv, int* info) { dgetrf_(&n, &n, a, &n, ipiv, info); }
  static void getrs(char t, int n, int k, const double* a, const int* ipiv, double* b, int* info) {
    dgetrs_(&t, &n, &k, a, &n, ipiv, b, &n, info, 1);
  }
  static void getri(int n, double* a, const int* ipiv, double* w, int lw, int* info) { dgetri_(&n, a, &n, ipiv, w, &lw, info); }
  static void potrf(char u, int n, double* a, int* info) { dpotrf_(&u, &n, a, &n, info, 1); }
  static void gesvd(int n, double* a, double* s, double* u, double* vt, double* w, int lw, int* info) {
    const char j = 'A';
    dgesvd_(&j, &j, &n, &n, a, &n, s, u, &n, vt, &n, w, &lw, info, 1, 1);
  }
  static void gelsd(int m, int n, int k, double* a, double* b, int ldb, double* s, double rcond, int* rank, double* w,
                    int lw, int* iw, int* info) {
    dgelsd_(&m, &n, &k, a, &m, b, &ldb, s, &rcond, rank, w, &lw, iw, info);
  }
  static void trsm(bool left, bool lower, bool unit, int m, int n, const double* a, int lda, double* b, int ldb) {
    cblas_dtrsm(CblasRowMajor, left ? CblasLeft : CblasRight, lower ? CblasLower : CblasUpper, CblasNoTrans,
                unit ? CblasUnit : CblasNonUnit, m, n, 1.0, a, lda, b, ldb);
  }
};

// r x c row-major src written as its transpose (c x r row-major = r x c column-major) into dst, in square tiles so
// neither side is walked a whole column at a time (a row of a 1024 x 1024 FP64 matrix is 8 KiB: a column walk misses
// the cache and the TLB on every element).
template <typename T> void transposeTiled(const T* src, int64_t r, int64_t c, T* dst) {
  constexpr int64_t B = 32;
  for (int64_t i0 = 0; i0 < r; i0 += B)
    for (int64_t j0 = 0; j0 < c; j0 += B)
      for (int64_t i = i0; i < std::min(r, i0 + B); i++)
        for (int64_t j = j0; j < std::min(c, j0 + B); j++) dst[j * r + i] = src[i * c + j];
}

// The thread choice of one LAPACK call. A factorization meets at a barrier after every panel, so threads pay off only
// for large matrices (measured on a shared 2-core machine: an LU or Cholesky of n = 256 on two threads took 5-20x
// its one-thread time under load, PyTorch's too); below kThreadedLapack flops the call runs on one thread (set so
// when a threaded product ran before). Calls below kSmallCall run inside forEachMatrix's one-thread scope instead of
// taking the shared lock each.
constexpr double kThreadedLapack = double(1 << 26);
struct CallScope {
  std::optional<BlasCallScope> s;
  explicit CallScope(double work) {
    // BlasCallScope picks one thread below its own threshold, all of them above: ask with 0 work for one thread
    if (work >= kSmallCall) s.emplace(work >= kThreadedLapack ? work : 0.0);
  }
};

#endif

// Trims a thread's scratch vector when the scope it serves ends: buffers up to kScratchKeepBytes keep their capacity
// for the next call on that thread, larger ones are freed, so a worker thread does not hold on to the largest matrix
// it ever worked on.
constexpr size_t kScratchKeepBytes = size_t(8) << 20;
template <typename V> struct ScratchTrim {
  V& v;
  explicit ScratchTrim(V& vec) : v(vec) {}
  ~ScratchTrim() {
    if (v.capacity() * sizeof(typename V::value_type) > kScratchKeepBytes) V().swap(v);
  }
  ScratchTrim(const ScratchTrim&) = delete;
  ScratchTrim& operator=(const ScratchTrim&) = delete;
};

}  // namespace gs::la
