// np.matmul with broadcast batch dims: one GEMM per output batch (a strided loop), or a single GEMM when b is shared
// by every batch and a's batches are contiguous (the batch then folds into m).
#include "gemm.h"
#include "kernels.h"
#include "parallel.h"

namespace gs {

MatmulPlan planMatmul(DType a, const Shape& as, DType b, const Shape& bs, bool transA, bool transB) {
  if (a != b) invalid(std::string("matmul: operands are ") + dtypeName(a) + " and " + dtypeName(b));
  if (a == DType::BOOL) invalid("matmul does not accept BOOL");
  if (as.size() < 2 || bs.size() < 2)
    invalid("matmul needs operands of rank >= 2, got " + fmtShape(as) + " and " + fmtShape(bs));
  MatmulPlan p;
  const size_t ra = as.size(), rb = bs.size();
  p.m = transA ? as[ra - 1] : as[ra - 2];
  p.k = transA ? as[ra - 2] : as[ra - 1];
  const int64_t kb = transB ? bs[rb - 1] : bs[rb - 2];
  p.n = transB ? bs[rb - 2] : bs[rb - 1];
  if (p.k != kb)
    invalid("matmul: inner dimensions differ: " + fmtShape(as) + (transA ? "^T" : "") + " @ " + fmtShape(bs) +
            (transB ? "^T" : ""));
  Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  p.batch = broadcastShapes({&ba, &bb});
  p.out = p.batch;
  p.out.push_back(p.m);
  p.out.push_back(p.n);
  numel(p.out, "matmul output shape");
  // cblas takes int dims.
  if (p.m > INT32_MAX || p.n > INT32_MAX || p.k > INT32_MAX || as[ra - 1] > INT32_MAX || bs[rb - 1] > INT32_MAX)
    invalid("matmul: a matrix dimension exceeds 2^31 - 1");
  return p;
}

void matmul(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool transA, bool transB,
            const MatmulPlan& p, const Arr& out) {
  const size_t ra = as.size(), rb = bs.size();
  const int64_t lda = as[ra - 1], ldb = bs[rb - 1];
  const int64_t aMat = as[ra - 2] * as[ra - 1], bMat = bs[rb - 2] * bs[rb - 1], cMat = p.m * p.n;
  Shape ba(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  Shape sa = broadcastStrides(ba, p.batch), sb = broadcastStrides(bb, p.batch);
  int64_t B = 1;
  for (int64_t d : p.batch) B *= d;
  if (B == 0 || cMat == 0) return;

  dispatch(a.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, uint8_t>::value) {
      auto gemm = [&](const T* A, const T* Bm, T* C, int64_t m) {
        if constexpr (std::is_same<T, float>::value) gemmF32(transA, transB, m, p.n, p.k, A, lda, Bm, ldb, C, p.n);
        else if constexpr (std::is_same<T, double>::value) gemmF64(transA, transB, m, p.n, p.k, A, lda, Bm, ldb, C, p.n);
        else gemmPortable<T>(transA, transB, m, p.n, p.k, A, lda, Bm, ldb, C, p.n);
      };
      const T* A = a.as<T>();
      const T* Bp = b.as<T>();
      T* C = out.as<T>();
      bool bShared = true, aFull = ba.size() == p.batch.size();
      for (int64_t s : sb) bShared = bShared && s == 0;
      for (size_t d = 0; aFull && d < ba.size(); d++) aFull = ba[d] == p.batch[d];
      if (bShared && aFull && !transA && B * p.m <= INT32_MAX) {
        gemm(A, Bp, C, B * p.m);
        return;
      }
      // A batch of products large enough in all (attention's per-head products) is split across the threads a
      // SplitScope grants, each product single-threaded, as a convolution's images are.
      const SplitScope split(double(B) * double(p.m) * double(p.n) * double(p.k), B);
      parallelFor(B, split.workers(), [&](int, int64_t i) {
        int64_t offA = 0, offB = 0;
        for (size_t d = p.batch.size(), rest = size_t(i); d-- > 0;) {
          const int64_t at = int64_t(rest % size_t(p.batch[d]));
          rest /= size_t(p.batch[d]);
          offA += at * sa[d];
          offB += at * sb[d];
        }
        gemm(A + offA * aMat, Bp + offB * bMat, C + i * cMat, p.m);
      });
    }
  });
}

}  // namespace gs
