// Linear solves and factorizations through LAPACK (the Fortran symbols OpenBLAS exports, declared in linalg_lapack.h,
// so no LAPACK headers are needed) and cblas trsm. Nothing here factors a matrix by hand. LU factorizations come from
// linalg_lu.h, which shares them between the steps of a program run.
//
// Layout: LAPACK is column-major, gradserve row-major, and a row-major n x n buffer read column-major is the
// transpose. So an LU of the buffer as it is factors a^T, and a solve with a is the transposed solve with that LU;
// inv(a^T) = inv(a)^T, so inverting the buffer in place gives inv(a) row-major; a Cholesky factor U (a = U^T U) of the
// buffer read column-major is L^T, i.e. L row-major (choleskyOne). Right-hand sides with more than one column are transposed into a
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

#include "linalg_lapack.h"
#include "linalg_lu.h"

namespace gs {

bool hasLapack() { return GRADSERVE_LAPACK != 0; }

bool parseMatrixOp(const std::string& s, MatrixOp& op) { return parseOpName(s, kMatrixOps, op); }

namespace {

using namespace la;

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

#if GRADSERVE_LAPACK
// getri's workspace: n times a block size (LAPACK's blocked inverse wants n * NB, NB 64 in OpenBLAS's LAPACK).
int getriWork(int n) { return std::max(1, n * 64); }

std::string singularMsg(const Shape& batch, int64_t i, int info) {
  return whichMatrix(batch, i) + " is singular (pivot " + std::to_string(info - 1) +
         " of its LU factorization is exactly zero)";
}

// scale * inv(a)^T (row-major) into out from the LU of the row-major buffer (an LU of a^T), or scale * inv(a) with
// `!transposed`. Up to kSolveInverse, by getrs with scale * I as right-hand side (the LU's solve with a^T is the
// inverse of a column-major, so of a^T row-major; measured 5-20% faster in OpenBLAS than getri from n = 16 to 256,
// and it needs neither a transposing copy nor a scaling pass), else by getri (faster from n = 512). getri's info.
constexpr int kSolveInverse = 384;

template <typename T>
int inverseInto(int n, const T* lu, const int* piv, bool transposed, double scale, T* out, std::vector<T>& work) {
  const int64_t nn = int64_t(n) * n;
  int info = 0;
  if (n <= kSolveInverse) {
    // FP32: the scale (a determinant) could overflow FP32 where its product with the inverse does not: applied after
    const bool inRhs = std::is_same<T, double>::value;
    std::fill(out, out + nn, T(0));
    for (int64_t i = 0; i < n; i++) out[i * n + i] = T(inRhs ? scale : 1.0);
    {
      CallScope scope(2.0 * n * n * n);
      Lapack<T>::getrs(transposed ? 'T' : 'N', n, n, lu, piv, out, &info);
    }
    if (!inRhs && scale != 1.0)
      for (int64_t i = 0; i < nn; i++) out[i] = T(double(out[i]) * scale);
    return info;
  }
  thread_local std::vector<T> inv;
  const ScratchTrim<std::vector<T>> trimInv(inv);
  T* dst = out;
  if (transposed) {
    inv.resize(size_t(nn));
    dst = inv.data();
  }
  std::copy(lu, lu + nn, dst);
  const int lw = getriWork(n);
  work.resize(size_t(lw));
  {
    CallScope scope(double(n) * n * n);
    Lapack<T>::getri(n, dst, piv, work.data(), lw, &info);
  }
  if (info != 0) return info;
  if (transposed) transposeTiled(inv.data(), n, n, out);
  if (scale != 1.0)
    for (int64_t i = 0; i < nn; i++) out[i] = T(double(out[i]) * scale);
  return 0;
}

// The cofactor matrix of the n x n row-major `a` into `out` (row-major): det(a) inv(a)^T through its LU when no pivot
// is exactly zero, else through the SVD a = U S V^T, whose cofactor matrix is det(U) det(V) U adj(S) V^T with
// adj(S) = diag(prod_{j != i} s_j), exact at singular matrices too.
template <typename T>
void cofactorOne(int n, const T* a, const T* lu, const int* piv, int luInfo, T* out, std::vector<T>& work) {
  const int64_t nn = int64_t(n) * n;
  if (luInfo == 0 && inverseInto(n, lu, piv, true, detFromLu(n, lu, piv, false), out, work) == 0) return;
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
  std::vector<int> ipiv(static_cast<size_t>(n));
  for (std::vector<T>* q2 : {&u, &vt}) {
    std::vector<T> c(*q2);
    int luinfo = 0;
    Lapack<T>::getrf(n, c.data(), ipiv.data(), &luinfo);
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

constexpr int64_t kTile = 32;

// f(r, c) for every c < r (and c == r with `diagonal`) of an n x n matrix, in kTile x kTile tiles: a pass that touches
// both (r, c) and (c, r) then walks neither a whole row nor a whole column of a large matrix at a time.
template <typename F> void forLowerInTiles(int64_t n, bool diagonal, F&& f) {
  for (int64_t r0 = 0; r0 < n; r0 += kTile)
    for (int64_t c0 = 0; c0 <= r0; c0 += kTile)
      for (int64_t r = r0; r < std::min(n, r0 + kTile); r++)
        for (int64_t c = c0, end = std::min(diagonal ? r + 1 : r, c0 + kTile); c < end; c++) f(r, c);
}

template <typename T> T symmetricAt(const T* a, int64_t n, int64_t r, int64_t c) {
  return T((double(a[r * n + c]) + double(a[c * n + r])) * 0.5);
}

// The lower Cholesky factor of (a + a^T) / 2 into o (row-major), by dpotrf 'L': the symmetric part goes into o's
// upper triangle, which read column-major is the lower triangle potrf reads and overwrites with L column-major (L^T
// row-major); L is then moved below the diagonal and zeros written above it. Both passes that read a transpose walk
// square tiles, so neither reads a whole column of a large matrix (8 KiB a row at n = 1024) at a time. 'L' is faster
// than 'U' in OpenBLAS at every size measured (one thread, potrf alone: 179 against 219 us at n = 256); with the
// tiled passes the whole call took 45 / 271 / 2150 us at n = 128 / 256 / 512 against 54 / 298 / 2080 us for 'U' above
// n = 128 with a pass that read a^T a column at a time (interleaved in one process; the same within 5% up to n = 64).
template <typename T> int choleskyOne(int n, const T* a, T* o) {
  const int64_t nn = n;
  forLowerInTiles(nn, true, [&](int64_t r, int64_t c) { o[c * nn + r] = symmetricAt(a, nn, c, r); });
  int info = 0;
  {
    CallScope scope(double(n) * n * n / 3);
    Lapack<T>::potrf('L', n, o, &info);
  }
  forLowerInTiles(nn, false, [&](int64_t r, int64_t c) { o[r * nn + c] = o[c * nn + r]; });
  for (int64_t r = 0; r + 1 < nn; r++) std::fill(o + r * nn + r + 1, o + (r + 1) * nn, T(0));
  return info;
}

// Cholesky's VJP without five passes over the matrix: sym_tril, y = (tril(x) + tril(x, -1)^T) / 2 (the symmetric
// matrix of x's lower triangle, halved), and its adjoint, y = (tril(x) + triu(x, 1)^T) / 2 (x's upper triangle folded
// onto the lower one, halved; zeros above). The transposed reads walk square tiles.
template <typename T> void symTrilOne(bool adjoint, int n, const T* x, T* y) {
  const int64_t nn = n;
  forLowerInTiles(nn, true, [&](int64_t r, int64_t c) {
    const double lo = double(x[r * nn + c]), up = double(x[c * nn + r]);
    if (adjoint) {
      y[r * nn + c] = T(c == r ? lo * 0.5 : (lo + up) * 0.5);
      if (c != r) y[c * nn + r] = T(0);
    } else {
      y[r * nn + c] = y[c * nn + r] = T(lo * 0.5);
    }
  });
}

template <typename T> void matrixOpT(MatrixOp op, const T* a, const Shape& shape, T* out) {
  const Shape batch = batchOf(shape);
  const int64_t count = numel(batch);
  const int n = int(shape.back());
  const int64_t nn = int64_t(n) * n;
  const double work = double(count) * n * n * n;
  if (n == 0) {
    if (op == MatrixOp::Det || op == MatrixOp::LogAbsDet) std::fill(out, out + count, op == MatrixOp::Det ? T(1) : T(0));
    return;
  }
  if (op == MatrixOp::SymTril || op == MatrixOp::SymTrilAdjoint) {
    forEachMatrix(count, 0.0, [&](int64_t i, ErrCode&) -> std::string {
      symTrilOne(op == MatrixOp::SymTrilAdjoint, n, a + i * nn, out + i * nn);
      return {};
    });
    return;
  }
  if (op == MatrixOp::Cholesky) {
    forEachMatrix(count, lapackWork(count, work / 3), [&](int64_t i, ErrCode& code) -> std::string {
      if (int info = choleskyOne(n, a + i * nn, out + i * nn)) {
        code = ErrCode::NotPositiveDefinite;
        return whichMatrix(batch, i) + " is not positive definite (its leading minor of order " + std::to_string(info) +
               " is not positive)";
      }
      return {};
    });
    return;
  }
  // the others start from the LU of every matrix (shared with the other steps of a program run that factor them)
  const LuBatch<T> f = factorBatch(count, n, a);
  const bool fromLu = op == MatrixOp::Det || op == MatrixOp::LogAbsDet;  // no LAPACK call past the LU
  forEachMatrix(count, fromLu ? 0.0 : lapackWork(count, work), [&](int64_t i, ErrCode& code) -> std::string {
    const T* lu = f.lu + i * nn;
    const int* piv = f.piv + i * n;
    const int luInfo = f.info[i];
    thread_local std::vector<T> lwork;
    const ScratchTrim<std::vector<T>> trimLwork(lwork);
    switch (op) {
      case MatrixOp::Inv: {
        if (luInfo) {
          code = ErrCode::SingularMatrix;
          return singularMsg(batch, i, luInfo);
        }
        if (int info = inverseInto(n, lu, piv, false, 1.0, out + i * nn, lwork)) {
          code = ErrCode::SingularMatrix;
          return singularMsg(batch, i, info);
        }
        return {};
      }
      case MatrixOp::Det:
      case MatrixOp::LogAbsDet:
        out[i] = T(detFromLu(n, lu, piv, op == MatrixOp::LogAbsDet));
        return {};
      case MatrixOp::Cofactor:
        cofactorOne(n, a + i * nn, lu, piv, luInfo, out + i * nn, lwork);
        return {};
      case MatrixOp::Cholesky:
      case MatrixOp::SymTril:
      case MatrixOp::SymTrilAdjoint:
        return {};
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
  forEachMatrix(m.count, lapackWork(m.count, work), [&](int64_t i, ErrCode&) -> std::string {
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
  // every matrix of a is factored once (all of them first; shared with the other steps of a program run that factor
  // them), whether or not it is broadcast against several b's
  const Shape aBatch = batchOf(as);
  const int64_t aCount = numel(aBatch);
  const LuBatch<T> f = factorBatch(aCount, n, a);
  for (int64_t j = 0; j < aCount; j++)
    if (f.info[j]) {
      // a matrix of a per output matrix: the index is the output's (the same one), else a's own
      if (aCount == m.count) fail(ErrCode::SingularMatrix, singularMsg(m.batch, j, f.info[j]));
      fail(ErrCode::SingularMatrix, singularMsg(aBatch, j, f.info[j]));
    }
  // the LU is of a^T (the buffer read column-major): a x = b is the transposed solve
  const char trans = transA ? 'N' : 'T';
  const double work = double(m.count) * n * 2.0 * n * k;
  forEachMatrix(m.count, lapackWork(m.count, work), [&](int64_t i, ErrCode&) -> std::string {
    T* o = out + i * bsz;
    const T* bi = b + m.b[size_t(i)] * bsz;
    const T* lu = f.lu + m.a[size_t(i)] * nn;
    const int* p = f.piv + m.a[size_t(i)] * n;
    thread_local std::vector<T> rhs;
    const ScratchTrim<std::vector<T>> trimRhs(rhs);
    int info = 0;
    CallScope scope(2.0 * n * n * k);
    if (k == 1) {
      std::copy(bi, bi + bsz, o);
      Lapack<T>::getrs(trans, n, k, lu, p, o, &info);
    } else {
      rhs.resize(size_t(bsz));
      transposeTiled(bi, n, k, rhs.data());
      Lapack<T>::getrs(trans, n, k, lu, p, rhs.data(), &info);
      transposeTiled(rhs.data(), k, n, o);
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
  forEachMatrix(m.count, lapackWork(m.count, work), [&](int64_t i, ErrCode&) -> std::string {
    T* o = out + i * osz;
    if (osz == 0) return {};
    if (rows == 0) {
      std::fill(o, o + osz, T(0));
      return {};
    }
    std::vector<T> ac(static_cast<size_t>(asz)), bc(static_cast<size_t>(int64_t(ldb) * k), T(0)), s(static_cast<size_t>(std::min(rows, n)) + 1);
    transposeTiled(a + m.a[size_t(i)] * asz, rows, n, ac.data());
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

}  // namespace gs
