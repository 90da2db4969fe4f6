// Spectral decompositions and QR through the LAPACK of the linked OpenBLAS: eigh (dsyevd), svd (dgesdd), qr (dgeqrf +
// dorgqr), FP32 and FP64, batched over leading axes. Nothing here factorizes by hand; without LAPACK (the portable
// build) every op refuses with "not supported in this build".
//
// Layout: gradserve is row-major, LAPACK column-major. Each batch member is copied into a column-major work buffer
// (LAPACK overwrites its input anyway), and results are written back row-major. eigh reads the symmetric part
// (a + aᵀ) / 2, so its derivative is the symmetric one the op promises. Batch members are spread over threads the
// way convolution images are (a SplitScope grants them), each LAPACK call then single-threaded; a lone large matrix
// gets OpenBLAS's threads through a BlasCallScope.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "parallel.h"

#if GRADSERVE_LAPACK
// Fortran LAPACK as OpenBLAS exports it (32-bit integers); character arguments carry their hidden lengths.
extern "C" {
void ssyevd_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w, float* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t, size_t);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t, size_t);
void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda, float* s, float* u, const int* ldu,
             float* vt, const int* ldvt, float* work, const int* lwork, int* iwork, int* info, size_t);
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
             const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork, int* info, size_t);
void sgeqrf_(const int* m, const int* n, float* a, const int* lda, float* tau, float* work, const int* lwork, int* info);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void sorgqr_(const int* m, const int* n, const int* k, float* a, const int* lda, const float* tau, float* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
}
#endif

namespace gs {

bool parseSpectralOp(const std::string& s, SpectralOp& op) { return parseOpName(s, kSpectralOps, op); }

namespace {

struct Dims {
  int64_t batch, m, n;
  Shape batchShape;
};

Dims dimsOf(const Shape& shape) {
  const size_t r = shape.size();
  const int64_t m = shape[r - 2], n = shape[r - 1];
  int64_t batch = 1;
  for (size_t i = 0; i + 2 < r; i++) batch *= shape[i];
  return {batch, m, n, Shape(shape.begin(), shape.end() - 2)};
}

// "[i, j]": the index of batch member b in the batch dims.
std::string batchIndex(const Shape& dims, int64_t b) {
  Shape idx(dims.size());
  for (size_t i = dims.size(); i-- > 0;) {
    idx[i] = dims[i] > 0 ? b % dims[i] : 0;
    b = dims[i] > 0 ? b / dims[i] : 0;
  }
  return fmtShape(idx);
}

}  // namespace

Shape planSpectral(SpectralOp op, DType dt, const Shape& shape) {
  const char* name = opInfo(op).name;
  if (!isFloat(dt)) invalid(std::string(name) + ": x must be FP32 or FP64, got " + dtypeName(dt));
  if (shape.size() < 2) invalid(std::string(name) + ": x must have rank >= 2, got " + fmtShape(shape));
  numel(shape, "x");
  const Dims d = dimsOf(shape);
  if (d.m > std::numeric_limits<int>::max() / std::max<int64_t>(1, d.n) / 2)
    invalid(std::string(name) + ": a matrix of " + fmtShape({d.m, d.n}) + " is too large for LAPACK");
  Shape out(shape.begin(), shape.end() - 2);
  const int64_t k = std::min(d.m, d.n);
  switch (op) {
    case SpectralOp::EighValues:
    case SpectralOp::EighVectors:
      if (d.m != d.n) invalid(std::string(name) + ": x must be square, got " + fmtShape(shape));
      out.push_back(d.n);
      if (op == SpectralOp::EighVectors) out.push_back(d.n);
      break;
    case SpectralOp::SvdValues: out.push_back(k); break;
    case SpectralOp::SvdVectors:
      out.push_back(d.m + d.n);
      out.push_back(k);
      break;
    case SpectralOp::QrQ:
    case SpectralOp::QrR:
      if (d.m < d.n) invalid(std::string(name) + ": x must have at least as many rows as columns, got " + fmtShape(shape));
      out.push_back(op == SpectralOp::QrQ ? d.m : d.n);
      out.push_back(d.n);
      break;
  }
#if !GRADSERVE_LAPACK
  fail(ErrCode::Unsupported, std::string(name) + " is not supported in this build (it was built without LAPACK)");
#endif
  return out;
}

#if GRADSERVE_LAPACK
namespace {

// Overloads over the element type, so one template drives FP32 and FP64.
void syevd(char jobz, int n, float* a, float* w, float* work, int lwork, int* iwork, int liwork, int& info) {
  const char uplo = 'L';
  ssyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
}
void syevd(char jobz, int n, double* a, double* w, double* work, int lwork, int* iwork, int liwork, int& info) {
  const char uplo = 'L';
  dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
}
void gesdd(char jobz, int m, int n, float* a, float* s, float* u, float* vt, float* work, int lwork, int* iwork,
           int& info) {
  const int k = std::min(m, n), ldu = std::max(1, m), ldvt = std::max(1, k);
  sgesdd_(&jobz, &m, &n, a, &ldu, s, u, &ldu, vt, &ldvt, work, &lwork, iwork, &info, 1);
}
void gesdd(char jobz, int m, int n, double* a, double* s, double* u, double* vt, double* work, int lwork, int* iwork,
           int& info) {
  const int k = std::min(m, n), ldu = std::max(1, m), ldvt = std::max(1, k);
  dgesdd_(&jobz, &m, &n, a, &ldu, s, u, &ldu, vt, &ldvt, work, &lwork, iwork, &info, 1);
}
void geqrf(int m, int n, float* a, float* tau, float* work, int lwork, int& info) {
  sgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
}
void geqrf(int m, int n, double* a, double* tau, double* work, int lwork, int& info) {
  dgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
}
void orgqr(int m, int n, float* a, const float* tau, float* work, int lwork, int& info) {
  sorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
}
void orgqr(int m, int n, double* a, const double* tau, double* work, int lwork, int& info) {
  dorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
}

// A workspace size LAPACK reported through a query (returned in a float of the element type).
template <typename T> int querySize(T v) { return std::max(1, int(std::ceil(double(v)))); }

// LAPACK's threaded paths pay off far later than a matrix product's: most of syevd / gesdd / geqrf is level-2 work and
// many small level-3 calls, each meeting at a barrier. Measured at n = 256 (every op), one thread was faster than two
// (2 to 10x on a loaded machine), so a call counts as a product of work / 64 flops: threaded from about n = 512.
constexpr double kThreadingDiscount = 64;

// One worker's buffers, sized once per kernel call by LAPACK's own workspace queries.
template <typename T> struct Workspace {
  std::vector<T> a, w, u, vt, work;
  std::vector<int> iwork;
};

template <typename T> class Spectral {
 public:
  Spectral(SpectralOp op, const Dims& d) : op_(op), d_(d), k_(int(std::min(d.m, d.n))) {}

  // Sizes of every buffer (the workspace query runs once, on a scratch matrix).
  void size(Workspace<T>& ws) const {
    const int m = int(d_.m), n = int(d_.n);
    ws.a.assign(size_t(std::max<int64_t>(1, d_.m * d_.n)), T(0));
    int info = 0;
    T q = 0;
    switch (op_) {
      case SpectralOp::EighValues:
      case SpectralOp::EighVectors: {
        int iq = 0;
        ws.w.resize(size_t(std::max(1, n)));
        syevd(jobz(), n, ws.a.data(), ws.w.data(), &q, -1, &iq, -1, info);
        ws.work.resize(size_t(querySize(q)));
        ws.iwork.resize(size_t(std::max(1, iq)));
        break;
      }
      case SpectralOp::SvdValues:
      case SpectralOp::SvdVectors: {
        ws.w.resize(size_t(std::max(1, k_)));
        if (vectors()) {
          ws.u.resize(size_t(std::max<int64_t>(1, d_.m * k_)));
          ws.vt.resize(size_t(std::max<int64_t>(1, int64_t(k_) * d_.n)));
        } else {
          ws.u.resize(1);
          ws.vt.resize(1);
        }
        ws.iwork.resize(size_t(std::max(1, 8 * k_)));
        gesdd(jobz(), m, n, ws.a.data(), ws.w.data(), ws.u.data(), ws.vt.data(), &q, -1, ws.iwork.data(), info);
        ws.work.resize(size_t(querySize(q)));
        break;
      }
      case SpectralOp::QrQ:
      case SpectralOp::QrR: {
        ws.w.resize(size_t(std::max(1, n)));  // tau
        geqrf(m, n, ws.a.data(), ws.w.data(), &q, -1, info);
        int lwork = querySize(q);
        if (op_ == SpectralOp::QrQ) {
          orgqr(m, n, ws.a.data(), ws.w.data(), &q, -1, info);
          lwork = std::max(lwork, querySize(q));
        }
        ws.work.resize(size_t(lwork));
        break;
      }
    }
  }

  // Batch member b of x into out. `ws` belongs to the calling thread.
  void run(const T* x, T* out, int64_t b, Workspace<T>& ws) const {
    const int64_t m = d_.m, n = d_.n;
    const T* src = x + b * m * n;
    T* dst = out + b * outSize();
    if (m == 0 || n == 0) return;
    for (int64_t i = 0; i < m * n; i++) {
      if (!std::isfinite(src[i])) {
        std::fill(dst, dst + outSize(), std::numeric_limits<T>::quiet_NaN());
        return;
      }
    }
    // column-major copy: a[i + j*m] = x[i][j]; eigh takes the symmetric part
    T* a = ws.a.data();
    if (isEigh()) {
      for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) a[i + j * n] = (src[i * n + j] + src[j * n + i]) * T(0.5);
    } else {
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) a[i + j * m] = src[i * n + j];
    }
    int info = 0;
    const BlasCallScope scope(work() / kThreadingDiscount);
    switch (op_) {
      case SpectralOp::EighValues:
      case SpectralOp::EighVectors: {
        syevd(jobz(), int(n), a, ws.w.data(), ws.work.data(), int(ws.work.size()), ws.iwork.data(),
              int(ws.iwork.size()), info);
        checkInfo(info, b, "syevd");
        if (op_ == SpectralOp::EighValues) {
          std::copy(ws.w.begin(), ws.w.begin() + n, dst);
        } else {
          // column j of a is eigenvector j: out[i][j] = a[i + j*n]
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) dst[i * n + j] = a[i + j * n];
        }
        break;
      }
      case SpectralOp::SvdValues:
      case SpectralOp::SvdVectors: {
        gesdd(jobz(), int(m), int(n), a, ws.w.data(), ws.u.data(), ws.vt.data(), ws.work.data(), int(ws.work.size()),
              ws.iwork.data(), info);
        checkInfo(info, b, "gesdd");
        const int64_t k = k_;
        if (op_ == SpectralOp::SvdValues) {
          std::copy(ws.w.begin(), ws.w.begin() + k, dst);
        } else {
          // rows 0..m-1: U[i][j] = u[i + j*m]; rows m..m+n-1: V[i][j] = vt[j + i*k]
          const T* u = ws.u.data();
          const T* vt = ws.vt.data();
          for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) dst[i * k + j] = u[i + j * m];
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < k; j++) dst[(m + i) * k + j] = vt[j + i * k];
        }
        break;
      }
      case SpectralOp::QrQ:
      case SpectralOp::QrR: {
        geqrf(int(m), int(n), a, ws.w.data(), ws.work.data(), int(ws.work.size()), info);
        checkInfo(info, b, "geqrf");
        if (op_ == SpectralOp::QrR) {
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) dst[i * n + j] = j >= i ? a[i + j * m] : T(0);
        } else {
          orgqr(int(m), int(n), a, ws.w.data(), ws.work.data(), int(ws.work.size()), info);
          checkInfo(info, b, "orgqr");
          for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) dst[i * n + j] = a[i + j * m];
        }
        break;
      }
    }
  }

  int64_t outSize() const {
    const int64_t m = d_.m, n = d_.n, k = k_;
    switch (op_) {
      case SpectralOp::EighValues: return n;
      case SpectralOp::EighVectors: return n * n;
      case SpectralOp::SvdValues: return k;
      case SpectralOp::SvdVectors: return (m + n) * k;
      case SpectralOp::QrQ: return m * n;
      case SpectralOp::QrR: return n * n;
    }
    return 0;
  }

  // Flops of one member, roughly (for the thread choice only).
  double work() const {
    const double m = double(d_.m), n = double(d_.n), k = double(k_);
    if (isEigh()) return (vectors() ? 9.0 : 4.0 / 3.0) * n * n * n;
    if (op_ == SpectralOp::SvdValues || op_ == SpectralOp::SvdVectors)
      return (vectors() ? 8.0 : 4.0) * std::max(m, n) * k * k;
    return 4.0 * m * n * n;
  }

 private:
  bool isEigh() const { return op_ == SpectralOp::EighValues || op_ == SpectralOp::EighVectors; }
  bool vectors() const { return op_ == SpectralOp::EighVectors || op_ == SpectralOp::SvdVectors; }
  char jobz() const {
    if (isEigh()) return vectors() ? 'V' : 'N';
    return vectors() ? 'S' : 'N';
  }

  void checkInfo(int info, int64_t b, const char* routine) const {
    if (info == 0) return;
    const std::string at = "the matrix at batch index " + batchIndex(d_.batchShape, b);
    if (info > 0)
      fail(ErrCode::NoConvergence, at + ": LAPACK's " + routine + " did not converge (info " + std::to_string(info) + ")");
    invalid(at + ": LAPACK's " + routine + " refused its argument " + std::to_string(-info));
  }

  SpectralOp op_;
  Dims d_;
  int k_;
};

template <typename T> void spectralT(SpectralOp op, const Arr& x, const Shape& shape, const Arr& out) {
  const Dims d = dimsOf(shape);
  if (d.batch == 0) return;
  const Spectral<T> s(op, d);
  if (d.m == 0 || d.n == 0) {
    // empty matrices: only eigh / svd vectors and qr can have elements left (none do), nothing to compute
    return;
  }
  // members go to threads only when each is small: a lone large matrix threads inside LAPACK instead
  const SplitScope split(s.work() * double(d.batch), d.batch);
  const int workers = split.workers();
  std::vector<Workspace<T>> ws(static_cast<size_t>(workers));
  for (auto& w : ws) s.size(w);
  parallelFor(d.batch, workers, [&](int w, int64_t b) { s.run(x.as<T>(), out.as<T>(), b, ws[size_t(w)]); });
}

}  // namespace

void spectral(SpectralOp op, const Arr& x, const Shape& shape, const Arr& out) {
  if (x.dt == DType::F32) spectralT<float>(op, x, shape, out);
  else spectralT<double>(op, x, shape, out);
}

#else

void spectral(SpectralOp op, const Arr&, const Shape&, const Arr&) {
  fail(ErrCode::Unsupported, std::string(opInfo(op).name) + " is not supported in this build (it was built without LAPACK)");
}

#endif

}  // namespace gs
