// Linear solves and factorizations through LAPACK (the Fortran symbols OpenBLAS exports; declared here, so no LAPACK
// headers are needed) and cblas trsm. Nothing here factors a matrix by hand.
//
// Layout: LAPACK is column-major, gradserve row-major, and a row-major n x n buffer read column-major is the
// transpose. So an LU of the buffer as it is factors a^T, and a solve with a is the transposed solve with that LU;
// inv(a^T) = inv(a)^T, so inverting the buffer in place gives inv(a) row-major; a Cholesky factor U (a = U^T U) of the
// buffer read column-major is L^T, i.e. L row-major. Right-hand sides with more than one column are transposed into a
// column-major scratch and back.
//
// Batches: each matrix is one LAPACK call. A batch of small matrices is split across threads (SplitScope grants them,
// each call then runs on one thread); a single large matrix gets OpenBLAS's threads for its call (BlasCallScope).
#include "linalg_solve.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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

namespace gs {

bool hasLapack() { return GRADSERVE_LAPACK != 0; }

bool parseMatrixOp(const std::string& s, MatrixOp& op) { return parseOpName(s, kMatrixOps, op); }

namespace {

// LAPACK's int dimensions: every matrix dimension must fit.
void checkLapackDim(int64_t d, const char* what) {
  if (d > int64_t(std::numeric_limits<int>::max() / 2)) invalid(std::string(what) + " is too large for LAPACK");
}

void needFloat(DType dt, const char* who) {
  if (!isFloat(dt)) invalid(std::string(who) + ": FP32 or FP64 expected, got " + dtypeName(dt));
}

void needSquare(const Shape& s, const char* what) {
  if (s.size() < 2) invalid(std::string(what) + " must have rank >= 2, got " + fmtShape(s));
  if (s[s.size() - 1] != s[s.size() - 2]) invalid(std::string(what) + " must be square, got " + fmtShape(s));
  checkLapackDim(s.back(), what);
}

Shape batchOf(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// Per output batch position, the index of the matrix of each operand (batch dims broadcast NumPy-style).
struct BatchMap {
  Shape batch;
  int64_t count = 0;
  std::vector<int64_t> a, b;
};

[[maybe_unused]] BatchMap mapBatches(const Shape& as, const Shape& bs) {
  BatchMap m;
  const Shape ab = batchOf(as), bb = batchOf(bs);
  m.batch = broadcastShapes({&ab, &bb});
  m.count = numel(m.batch);
  const Shape sa = broadcastStrides(ab, m.batch), sb = broadcastStrides(bb, m.batch);
  // broadcastStrides gives element strides of the contiguous batch shape: matrix indices here
  m.a.resize(size_t(m.count));
  m.b.resize(size_t(m.count));
  Shape idx(m.batch.size(), 0);
  for (int64_t i = 0; i < m.count; i++) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < idx.size(); d++) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    m.a[size_t(i)] = ia;
    m.b[size_t(i)] = ib;
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < m.batch[d]) break;
      idx[d] = 0;
    }
  }
  return m;
}

// An LU factorization remembered for the rest of a program run (FactorizationScope).
struct LuEntry {
  DType dt;
  int n;
  std::vector<unsigned char> a, lu;  // the matrix as given, and its LU (both n x n of dt)
  std::vector<int> piv;
  int info = 0;
};

struct RunMemo {
  std::mutex mu;
  std::vector<std::shared_ptr<const LuEntry>> lus;
  size_t bytes = 0;
};

// The memo of the FactorizationScope open on this thread (null outside a program run).
thread_local RunMemo* currentMemo = nullptr;

// "the matrix" or "the matrix at batch index [1, 0]".
[[maybe_unused]] std::string whichMatrix(const Shape& batch, int64_t i) {
  if (batch.empty()) return "the matrix";
  Shape idx(batch.size());
  for (size_t d = batch.size(); d-- > 0;) {
    idx[d] = batch[d] == 0 ? 0 : i % batch[d];
    i = batch[d] == 0 ? 0 : i / batch[d];
  }
  return "the matrix at batch index " + fmtShape(idx);
}

// Runs body(i) for every matrix i < count, split across the threads a SplitScope grants for `work` flops in all.
// body returns a failure message (empty: fine) with its code; the failure of the lowest index is thrown, whatever the
// threads (parallelFor).
template <typename F> void forEachMatrix(int64_t count, double work, F&& body) {
  SplitScope split(work, count);
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

// r x c row-major src written as its transpose (c x r row-major = r x c column-major) into dst.
template <typename T> void transposeInto(const T* src, int64_t r, int64_t c, T* dst) {
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < c; j++) dst[j * r + i] = src[i * c + j];
}

// The thread choice of one LAPACK call. A factorization meets at a barrier after every panel, so threads pay off only
// for large matrices (measured on a shared 2-core machine: an LU or Cholesky of n = 256 on two threads took 5-20x
// its one-thread time under load, PyTorch's too); below kThreadedLapack flops the call runs on one thread (set so
// when a threaded product ran before), and a batch of small matrices split across threads skips the shared lock.
constexpr double kThreadedLapack = double(1 << 26);
struct CallScope {
  std::optional<BlasCallScope> s;
  explicit CallScope(double work) {
    // BlasCallScope picks one thread below its own threshold, all of them above: ask with 0 work for one thread
    if (work >= double(1 << 21)) s.emplace(work >= kThreadedLapack ? work : 0.0);
  }
};

// getri's workspace: n times a block size (LAPACK's blocked inverse wants n * NB, NB 64 in OpenBLAS's LAPACK).
int getriWork(int n) { return std::max(1, n * 64); }

std::string singularMsg(const Shape& batch, int64_t i, int info) {
  return whichMatrix(batch, i) + " is singular (pivot " + std::to_string(info - 1) +
         " of its LU factorization is exactly zero)";
}

// The LU of buf (n x n, factored in place as the column-major matrix it holds); info > 0: an exactly zero pivot.
template <typename T> int luInPlace(int n, T* buf, int* ipiv) {
  int info = 0;
  CallScope scope(double(n) * n * n);
  Lapack<T>::getrf(n, buf, ipiv, &info);
  if (info < 0) invalid("getrf: argument " + std::to_string(-info) + " is invalid");
  return info;
}

// ---- the per-run memo of LU factorizations (FactorizationScope) ----
constexpr int kMemoN = 32;
constexpr size_t kMemoBytes = size_t(64) << 20;

// The LU of `a` (n x n, factored as the column-major matrix the row-major buffer is), with its pivots and info.
template <typename T> struct Lu {
  std::shared_ptr<const LuEntry> held;
  const T* lu;
  const int* piv;
  int info;
};

template <typename T> constexpr DType dtypeOf() { return std::is_same<T, float>::value ? DType::F32 : DType::F64; }

template <typename T> Lu<T> factor(RunMemo* memo, int n, const T* a) {
  const size_t bytes = size_t(n) * size_t(n) * sizeof(T);
  if (memo == nullptr || n < kMemoN) {
    thread_local std::vector<T> lu;
    thread_local std::vector<int> piv;
    lu.assign(a, a + int64_t(n) * n);
    piv.resize(size_t(std::max(n, 1)));
    const int info = luInPlace(n, lu.data(), piv.data());
    return {nullptr, lu.data(), piv.data(), info};
  }
  std::vector<std::shared_ptr<const LuEntry>> known;
  {
    std::lock_guard<std::mutex> lock(memo->mu);
    known = memo->lus;
  }
  for (const auto& e : known)
    if (e->dt == dtypeOf<T>() && e->n == n && std::memcmp(e->a.data(), a, bytes) == 0)
      return {e, reinterpret_cast<const T*>(e->lu.data()), e->piv.data(), e->info};
  auto e = std::make_shared<LuEntry>();
  e->dt = dtypeOf<T>();
  e->n = n;
  e->a.assign(reinterpret_cast<const unsigned char*>(a), reinterpret_cast<const unsigned char*>(a) + bytes);
  e->lu = e->a;
  e->piv.resize(size_t(n));
  e->info = luInPlace(n, reinterpret_cast<T*>(e->lu.data()), e->piv.data());
  {
    std::lock_guard<std::mutex> lock(memo->mu);
    if (memo->bytes + 2 * bytes <= kMemoBytes) {
      memo->lus.push_back(e);
      memo->bytes += 2 * bytes;
    }
  }
  return {e, reinterpret_cast<const T*>(e->lu.data()), e->piv.data(), e->info};
}

// det (or log|det|) from an LU: the product of U's diagonal, its sign flipped by every row interchange.
template <typename T> double detFromLu(int n, const T* lu, const int* ipiv, bool logAbs) {
  if (logAbs) {
    double s = 0;
    for (int i = 0; i < n; i++) s += std::log(std::fabs(double(lu[int64_t(i) * n + i])));
    return s;
  }
  double d = 1;
  for (int i = 0; i < n; i++) {
    d *= double(lu[int64_t(i) * n + i]);
    if (ipiv[i] != i + 1) d = -d;
  }
  return d;
}

// The cofactor matrix of the n x n row-major `a` into `out` (row-major): det(a) inv(a)^T through an LU when no pivot
// is exactly zero, else through the SVD a = U S V^T, whose cofactor matrix is det(U) det(V) U adj(S) V^T with
// adj(S) = diag(prod_{j != i} s_j), exact at singular matrices too.
template <typename T>
void cofactorOne(RunMemo* memo, int n, const T* a, T* out, std::vector<T>& work, std::vector<int>& ipiv) {
  const int64_t nn = int64_t(n) * n;
  ipiv.resize(size_t(std::max(n, 1)));
  {
    // the LU of the buffer as it is (a^T column-major; shared with det and solve): its inverse read row-major is
    // inv(a), transposed into out
    const Lu<T> f = factor(memo, n, a);
    if (f.info == 0) {
      const double det = detFromLu(n, f.lu, f.piv, false);
      thread_local std::vector<T> inv;
      inv.assign(f.lu, f.lu + nn);
      int info = 0;
      const int lw = getriWork(n);
      work.resize(size_t(lw));
      {
        CallScope scope(double(n) * n * n);
        Lapack<T>::getri(n, inv.data(), f.piv, work.data(), lw, &info);
      }
      if (info == 0) {
        for (int64_t r = 0; r < n; r++)
          for (int64_t c = 0; c < n; c++) out[r * n + c] = T(double(inv[size_t(c * n + r)]) * det);
        return;
      }
    }
  }
  // singular: the SVD route, of a row-major copy read column-major (= a^T): cofactor(a^T) = cofactor(a)^T, so the
  // column-major result read row-major is cofactor(a).
  std::vector<T> m(a, a + nn), s(static_cast<size_t>(n)), u(static_cast<size_t>(nn)), vt(static_cast<size_t>(nn));
  int info = 0;
  T q = 0;
  Lapack<T>::gesvd(n, m.data(), s.data(), u.data(), vt.data(), &q, -1, &info);
  const int lw = std::max(1, int(q));
  work.resize(size_t(lw));
  {
    CallScope scope(double(n) * n * n);
    Lapack<T>::gesvd(n, m.data(), s.data(), u.data(), vt.data(), work.data(), lw, &info);
  }
  if (info != 0) fail(ErrCode::InvalidArgument, "the SVD of a singular matrix did not converge");
  // adj(S): products of all singular values but one (prefix and suffix products)
  std::vector<double> adj(size_t(n), 1.0);
  double p = 1;
  for (int i = 0; i < n; i++) {
    adj[size_t(i)] = p;
    p *= double(s[size_t(i)]);
  }
  p = 1;
  for (int i = n; i-- > 0;) {
    adj[size_t(i)] *= p;
    p *= double(s[size_t(i)]);
  }
  // det(U) det(V^T): each is +-1, the sign of an LU's determinant
  double sign = 1;
  for (std::vector<T>* q2 : {&u, &vt}) {
    std::vector<T> c(*q2);
    luInPlace(n, c.data(), ipiv.data());
    sign *= detFromLu(n, c.data(), ipiv.data(), false) < 0 ? -1.0 : 1.0;
  }
  // column-major out = U diag(adj) V^T
  for (int64_t c = 0; c < n; c++)
    for (int64_t r = 0; r < n; r++) {
      double acc = 0;
      for (int64_t k = 0; k < n; k++) acc += double(u[size_t(k * n + r)]) * adj[size_t(k)] * double(vt[size_t(c * n + k)]);
      out[c * n + r] = T(sign * acc);
    }
}

template <typename T> void matrixOpT(MatrixOp op, const T* a, const Shape& shape, T* out) {
  const Shape batch = batchOf(shape);
  const int64_t count = numel(batch);
  const int n = int(shape.back());
  const int64_t nn = int64_t(n) * n;
  const double work = double(count) * n * n * n;
  RunMemo* memo = currentMemo;
  forEachMatrix(count, work, [&](int64_t i, ErrCode& code) -> std::string {
    const T* ai = a + i * nn;
    thread_local std::vector<T> lwork;
    thread_local std::vector<int> ipiv;
    ipiv.resize(size_t(std::max(n, 1)));
    switch (op) {
      case MatrixOp::Inv: {
        T* o = out + i * nn;
        if (n == 0) return {};
        const Lu<T> f = factor(memo, n, ai);
        if (f.info) {
          code = ErrCode::SingularMatrix;
          return singularMsg(batch, i, f.info);
        }
        std::copy(f.lu, f.lu + nn, o);
        int info = 0;
        const int lw = getriWork(n);
        lwork.resize(size_t(lw));
        CallScope scope(double(n) * n * n);
        Lapack<T>::getri(n, o, f.piv, lwork.data(), lw, &info);
        if (info > 0) {
          code = ErrCode::SingularMatrix;
          return singularMsg(batch, i, info);
        }
        return {};
      }
      case MatrixOp::Cholesky: {
        // the lower triangle of (a + a^T) / 2, zeros above: dpotrf 'U' of the buffer read column-major
        T* o = out + i * nn;
        for (int64_t r = 0; r < n; r++)
          for (int64_t c = 0; c < n; c++) o[r * n + c] = c <= r ? T((double(ai[r * n + c]) + double(ai[c * n + r])) * 0.5) : T(0);
        if (n == 0) return {};
        int info = 0;
        {
          CallScope scope(double(n) * n * n / 3);
          Lapack<T>::potrf('U', n, o, &info);
        }
        if (info > 0) {
          code = ErrCode::NotPositiveDefinite;
          return whichMatrix(batch, i) + " is not positive definite (its leading minor of order " + std::to_string(info) +
                 " is not positive)";
        }
        return {};
      }
      case MatrixOp::Det:
      case MatrixOp::LogAbsDet: {
        const bool logAbs = op == MatrixOp::LogAbsDet;
        if (n == 0) {
          out[i] = logAbs ? T(0) : T(1);
          return {};
        }
        const Lu<T> f = factor(memo, n, ai);
        out[i] = T(detFromLu(n, f.lu, f.piv, logAbs));
        return {};
      }
      case MatrixOp::Cofactor: {
        if (n == 0) return {};
        cofactorOne(memo, n, ai, out + i * nn, lwork, ipiv);
        return {};
      }
    }
    return {};
  });
}

template <typename T>
void triangularSolveT(const T* a, const Shape& as, const T* b, const Shape& bs, bool lower, bool unit, bool left,
                      T* out) {
  const BatchMap m = mapBatches(as, bs);
  const int n = int(as.back());
  const int rows = int(bs[bs.size() - 2]), cols = int(bs.back());
  const int64_t nn = int64_t(n) * n, bsz = int64_t(rows) * cols;
  const double work = double(m.count) * n * n * (left ? cols : rows);
  forEachMatrix(m.count, work, [&](int64_t i, ErrCode&) -> std::string {
    T* o = out + i * bsz;
    const T* bi = b + m.b[size_t(i)] * bsz;
    std::copy(bi, bi + bsz, o);
    if (bsz == 0 || n == 0) return {};
    CallScope scope(double(n) * n * (left ? cols : rows));
    // trsm never reads the other triangle, nor the diagonal when it is unit
    Lapack<T>::trsm(left, lower, unit, rows, cols, a + m.a[size_t(i)] * nn, n, o, cols);
    return {};
  });
}

template <typename T>
void solveT(const T* a, const Shape& as, const T* b, const Shape& bs, bool transA, T* out) {
  const BatchMap m = mapBatches(as, bs);
  const int n = int(as.back());
  const int k = int(bs.back());
  const int64_t nn = int64_t(n) * n, bsz = int64_t(n) * k;
  if (m.count == 0 || n == 0 || k == 0) return;
  // a broadcast against several b's is factored once per matrix of a (all of them first), else per output matrix
  const int64_t aCount = numel(batchOf(as));
  const bool shared = aCount < m.count;
  std::vector<T> lus;
  std::vector<int> pivs;
  if (shared) {
    lus.assign(a, a + aCount * nn);
    pivs.resize(size_t(aCount * n));
    const Shape aBatch = batchOf(as);
    forEachMatrix(aCount, double(aCount) * n * n * n / 1.5, [&](int64_t j, ErrCode& code) -> std::string {
      if (int info = luInPlace(n, lus.data() + j * nn, pivs.data() + j * n)) {
        code = ErrCode::SingularMatrix;
        return singularMsg(aBatch, j, info);
      }
      return {};
    });
  }
  // the LU is of a^T (the buffer read column-major): a x = b is the transposed solve
  const char trans = transA ? 'N' : 'T';
  RunMemo* memo = currentMemo;
  const double work = double(m.count) * n * ((shared ? 0.0 : double(n) * n / 1.5) + 2.0 * n * k);
  forEachMatrix(m.count, work, [&](int64_t i, ErrCode& code) -> std::string {
    T* o = out + i * bsz;
    const T* bi = b + m.b[size_t(i)] * bsz;
    thread_local std::vector<T> rhs;
    const T* f;
    const int* p;
    Lu<T> own{nullptr, nullptr, nullptr, 0};
    if (shared) {
      f = lus.data() + m.a[size_t(i)] * nn;
      p = pivs.data() + m.a[size_t(i)] * n;
    } else {
      own = factor(memo, n, a + m.a[size_t(i)] * nn);
      if (own.info) {
        code = ErrCode::SingularMatrix;
        return singularMsg(m.batch, i, own.info);
      }
      f = own.lu;
      p = own.piv;
    }
    int info = 0;
    CallScope scope(2.0 * n * n * k);
    if (k == 1) {
      std::copy(bi, bi + bsz, o);
      Lapack<T>::getrs(trans, n, k, f, p, o, &info);
    } else {
      rhs.resize(size_t(bsz));
      transposeInto(bi, n, k, rhs.data());
      Lapack<T>::getrs(trans, n, k, f, p, rhs.data(), &info);
      transposeInto(rhs.data(), k, n, o);
    }
    return {};
  });
}

template <typename T> void lstsqT(const T* a, const Shape& as, const T* b, const Shape& bs, T* out) {
  const BatchMap m = mapBatches(as, bs);
  const int rows = int(as[as.size() - 2]), n = int(as.back()), k = int(bs.back());
  const int ldb = std::max(1, std::max(rows, n));
  const int64_t asz = int64_t(rows) * n, bsz = int64_t(rows) * k, osz = int64_t(n) * k;
  const double work = double(m.count) * rows * n * std::max(rows, n) * 4;
  const T rcond = std::numeric_limits<T>::epsilon() * T(std::max(rows, n));
  forEachMatrix(m.count, work, [&](int64_t i, ErrCode&) -> std::string {
    T* o = out + i * osz;
    if (osz == 0) return {};
    if (rows == 0) {
      std::fill(o, o + osz, T(0));
      return {};
    }
    std::vector<T> ac(static_cast<size_t>(asz)), bc(static_cast<size_t>(int64_t(ldb) * k), T(0)), s(static_cast<size_t>(std::min(rows, n)) + 1);
    transposeInto(a + m.a[size_t(i)] * asz, rows, n, ac.data());
    const T* bi = b + m.b[size_t(i)] * bsz;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < k; c++) bc[size_t(c * ldb + r)] = bi[r * k + c];
    int rank = 0, info = 0, iq = 0;
    T q = 0;
    Lapack<T>::gelsd(rows, n, k, ac.data(), bc.data(), ldb, s.data(), rcond, &rank, &q, -1, &iq, &info);
    const int lw = std::max(1, int(q));
    std::vector<T> w(static_cast<size_t>(lw));
    std::vector<int> iw(static_cast<size_t>(std::max(1, iq)));
    {
      CallScope scope(double(rows) * n * std::max(rows, n));
      Lapack<T>::gelsd(rows, n, k, ac.data(), bc.data(), ldb, s.data(), rcond, &rank, w.data(), lw, iw.data(), &info);
    }
    if (info != 0) return whichMatrix(m.batch, i) + ": the SVD of the least-squares problem did not converge";
    for (int64_t r = 0; r < n; r++)
      for (int64_t c = 0; c < k; c++) o[r * k + c] = bc[size_t(c * ldb + r)];
    return {};
  });
}
#endif

#if !GRADSERVE_LAPACK
[[noreturn]] void unsupported(const char* what) {
  fail(ErrCode::Unsupported, std::string(what) + " is not supported in this build (it was built without LAPACK)");
}
#endif

void sameFloat(DType a, DType b, const char* who) {
  needFloat(a, who);
  if (a != b) invalid(std::string(who) + ": a and b must share a datatype, got " + dtypeName(a) + " and " + dtypeName(b));
}

Shape broadcastOut(const Shape& as, const Shape& bs, int64_t r, int64_t c, const char* who) {
  const Shape ab = batchOf(as), bb = batchOf(bs);
  Shape out;
  try {
    out = broadcastShapes({&ab, &bb});
  } catch (const KernelError&) {
    invalid(std::string(who) + ": batch dims of " + fmtShape(as) + " and " + fmtShape(bs) + " do not broadcast");
  }
  out.push_back(r);
  out.push_back(c);
  numel(out, "output");
  return out;
}

}  // namespace

Shape planMatrixOp(MatrixOp op, DType dt, const Shape& shape) {
  needFloat(dt, opInfo(op).name);
  needSquare(shape, "a");
  numel(shape, "a");
  return opInfo(op).matrixOut ? shape : batchOf(shape);
}

void matrixOp(MatrixOp op, const Arr& a, const Shape& shape, const Arr& out) {
#if GRADSERVE_LAPACK
  if (a.dt == DType::F32) matrixOpT(op, a.as<float>(), shape, out.as<float>());
  else matrixOpT(op, a.as<double>(), shape, out.as<double>());
#else
  (void)a; (void)shape; (void)out;
  unsupported(opInfo(op).name);
#endif
}

Shape planTriangularSolve(DType ad, const Shape& as, DType bd, const Shape& bs, bool left) {
  sameFloat(ad, bd, "triangular_solve");
  needSquare(as, "a");
  if (bs.size() < 2) invalid("triangular_solve: b must have rank >= 2, got " + fmtShape(bs));
  const int64_t n = as.back();
  const int64_t rows = bs[bs.size() - 2], cols = bs.back();
  if ((left ? rows : cols) != n)
    invalid("triangular_solve: a " + fmtShape(as) + " does not fit b " + fmtShape(bs) + (left ? " (left)" : " (right)"));
  checkLapackDim(rows, "b");
  checkLapackDim(cols, "b");
  return broadcastOut(as, bs, rows, cols, "triangular_solve");
}

void triangularSolve(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool lower, bool unit, bool left,
                     const Shape& outShape, const Arr& out) {
  (void)outShape;
#if GRADSERVE_LAPACK
  if (a.dt == DType::F32) triangularSolveT(a.as<float>(), as, b.as<float>(), bs, lower, unit, left, out.as<float>());
  else triangularSolveT(a.as<double>(), as, b.as<double>(), bs, lower, unit, left, out.as<double>());
#else
  (void)a; (void)as; (void)b; (void)bs; (void)lower; (void)unit; (void)left; (void)out;
  unsupported("triangular_solve");
#endif
}

Shape planSolve(DType ad, const Shape& as, DType bd, const Shape& bs) {
  sameFloat(ad, bd, "solve");
  needSquare(as, "a");
  if (bs.size() < 2) invalid("solve: b must have rank >= 2, got " + fmtShape(bs));
  if (bs[bs.size() - 2] != as.back()) invalid("solve: a " + fmtShape(as) + " does not fit b " + fmtShape(bs));
  checkLapackDim(bs.back(), "b");
  return broadcastOut(as, bs, as.back(), bs.back(), "solve");
}

void solve(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool transA, const Shape& outShape,
           const Arr& out) {
  (void)outShape;
#if GRADSERVE_LAPACK
  if (a.dt == DType::F32) solveT(a.as<float>(), as, b.as<float>(), bs, transA, out.as<float>());
  else solveT(a.as<double>(), as, b.as<double>(), bs, transA, out.as<double>());
#else
  (void)a; (void)as; (void)b; (void)bs; (void)transA; (void)out;
  unsupported("solve");
#endif
}

Shape planLstsq(DType ad, const Shape& as, DType bd, const Shape& bs) {
  sameFloat(ad, bd, "lstsq");
  if (as.size() < 2 || bs.size() < 2) invalid("lstsq: a and b must have rank >= 2, got " + fmtShape(as) + " and " + fmtShape(bs));
  if (bs[bs.size() - 2] != as[as.size() - 2]) invalid("lstsq: a " + fmtShape(as) + " does not fit b " + fmtShape(bs));
  checkLapackDim(as[as.size() - 2], "a");
  checkLapackDim(as.back(), "a");
  checkLapackDim(bs.back(), "b");
  return broadcastOut(as, bs, as.back(), bs.back(), "lstsq");
}

void lstsq(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, const Shape& outShape, const Arr& out) {
  (void)outShape;
#if GRADSERVE_LAPACK
  if (a.dt == DType::F32) lstsqT(a.as<float>(), as, b.as<float>(), bs, out.as<float>());
  else lstsqT(a.as<double>(), as, b.as<double>(), bs, out.as<double>());
#else
  (void)a; (void)as; (void)b; (void)bs; (void)out;
  unsupported("lstsq");
#endif
}

FactorizationScope::FactorizationScope() {
  if (currentMemo == nullptr) {
    currentMemo = new RunMemo();
    owner_ = true;
  }
}

FactorizationScope::~FactorizationScope() {
  if (owner_) {
    delete currentMemo;
    currentMemo = nullptr;
  }
}

}  // namespace gs
