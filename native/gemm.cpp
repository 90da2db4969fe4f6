// The BLAS seam: everything else calls gemmF32/gemmF64 and never sees cblas.h.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "idle_cores.h"
#include "kernels.h"
#include "parallel.h"

#if GRADSERVE_CBLAS
#include <cblas.h>
#endif
#if GRADSERVE_OPENBLAS
extern "C" {
char* openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
}
#endif

namespace gs {

namespace {
// Threads per matrix product, chosen per call. A large product (m*n*k >= kThreadedWork) that runs alone is cut into
// parts over rows (or columns) of C, one per thread up to OpenBLAS's thread count (OPENBLAS_NUM_THREADS, all cores
// by default) and no more than the cores other processes leave idle (usableCores, native/idle_cores.cpp), each part a
// single-threaded product on a thread of our own (`product` below); a small one, and every product that starts while
// another is running, runs on one thread (two threaded products on the same cores oversubscribe them). OpenBLAS's
// own threading is left for the calls that cannot be cut: a product with too few rows and columns, and LAPACK
// (BlasCallScope). Measured on the 2-core VM (transformer block, forward + backward, whose linear layers are 67-268 M
// multiply-adds, load 5): OpenBLAS's two threads cost 105 ms of CPU a step against 82 ms on one thread (its threads
// meet at barriers inside each product, spinning while they wait), split products 86 ms.
// Debian's OpenBLAS has no per-call thread count, so the process-wide one is switched, under a lock, only when the
// choice changes; a product already running keeps the count it started with. GRADSERVE_BLAS_ADAPTIVE=0 leaves the
// library's own choice alone (no split either).
// m*n*k (summed over a kernel's products, for SplitScope) below this runs on one thread. At 2^21 LeNet's products and
// convolutions (2-16 M multiply-adds each) went to two threads and spent 28 ms of CPU a step against 16 ms on one,
// under load; products of that size finish before a second thread pays for itself. (Re-measured for split products
// on 2026-12-07: 2^22 for both cost LeNet 18.4 ms of CPU a step against 16.1 at 2^24, load 5.)
constexpr double kThreadedWork = double(1 << 24);
std::atomic<int> activeProducts{0};

#if GRADSERVE_OPENBLAS
std::mutex threadsMu;
int currentThreads = -1;  // guarded by threadsMu

int libraryThreads() {
  static const int n = openblas_get_num_threads();
  return n;
}

bool adaptiveThreads() {
  static const bool on = [] {
    const char* env = std::getenv("GRADSERVE_BLAS_ADAPTIVE");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return on;
}
#endif

// Counts the call as running and sets the thread count it gets (work = m*n*k of a product; `single`: one thread).
void enterProduct(double work, bool single = false) {
  const int others = activeProducts.fetch_add(1);
#if GRADSERVE_OPENBLAS
  const int most = libraryThreads();
  if (!adaptiveThreads() || most <= 1) return;
  const int want = (single || others > 0 || work < kThreadedWork) ? 1 : usableCores(most);
  std::lock_guard<std::mutex> lock(threadsMu);
  if (want != currentThreads) {
    openblas_set_num_threads(want);
    currentThreads = want;
  }
#else
  (void)others; (void)work; (void)single;
#endif
}

struct ProductScope {
  ProductScope(int64_t m, int64_t n, int64_t k, bool single = false) {
    enterProduct(double(m) * double(n) * double(k), single);
  }
  ~ProductScope() { activeProducts.fetch_sub(1); }
  ProductScope(const ProductScope&) = delete;
  ProductScope& operator=(const ProductScope&) = delete;
};
}  // namespace

BlasCallScope::BlasCallScope(double work) { enterProduct(work); }
BlasCallScope::~BlasCallScope() { activeProducts.fetch_sub(1); }

SplitScope::SplitScope(double work, int64_t tasks) {
  const int others = activeProducts.fetch_add(1);
#if GRADSERVE_OPENBLAS
  const int most = libraryThreads();
  if (others == 0 && most > 1 && adaptiveThreads() && work >= kThreadedWork)
    workers_ = int(std::min<int64_t>(usableCores(most), tasks));
#else
  (void)others; (void)work; (void)tasks;
#endif
  if (workers_ <= 1) {
    workers_ = 1;
    activeProducts.fetch_sub(1);
  }
}

SplitScope::~SplitScope() {
  if (workers_ > 1) activeProducts.fetch_sub(1);
}

#if GRADSERVE_CBLAS
namespace {
void blasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,
              int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, A, int(lda), B, int(ldb), accumulate ? 1.0f : 0.0f, C, int(ldc));
}

void blasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, const double* B,
              int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0, A, int(lda), B, int(ldb), accumulate ? 1.0 : 0.0, C, int(ldc));
}

// Part boundaries are multiples of kSplitAlign rows: with OpenBLAS's Haswell/Zen sgemm kernels (this VM), a product
// cut there gives the same bits as the whole product on one thread (measured on four shapes; cut anywhere else, or
// by columns, 3-5% of the entries differ in their last bits), so a result does not depend on how many threads the
// load allowed. dgemm's kernels gave the same bits at any multiple of 16. (Other kernels may need other multiples;
// OpenBLAS's own threads do not keep the bits either.) A part is at least kMinPart rows.
constexpr int64_t kSplitAlign = 48, kMinPart = 2 * kSplitAlign;

// A large product that runs alone is cut into independent products over rows of C, one per granted thread, each
// single-threaded: no barrier inside the product and no spinning OpenBLAS threads after it. When the split is not
// granted (another product runs, or no idle core), it runs on one thread, whose bits the split keeps. A product with
// too few rows to cut keeps the per-product choice (ProductScope).
template <typename T>
void product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb,
             T* C, int64_t ldc, bool accumulate) {
  const bool cuttable = m >= 2 * kMinPart;
  if (cuttable) {
    const SplitScope split(double(m) * double(n) * double(k), m / kMinPart);
    const int workers = split.workers();
    if (workers > 1) {
      // One part per worker: more, smaller parts (for balance when a core is shared) measured no faster, and each
      // part packs the shared operand again.
      const int64_t parts = workers;
      auto edge = [&](int64_t i) {
        return i == parts ? m : (m * i / parts + kSplitAlign / 2) / kSplitAlign * kSplitAlign;
      };
      parallelFor(parts, workers, [&](int, int64_t i) {
        const int64_t lo = edge(i), cnt = edge(i + 1) - lo;
        ProductScope scope(cnt, n, k, true);
        blasGemm(ta, tb, cnt, n, k, ta ? A + lo : A + lo * lda, lda, B, ldb, C + lo * ldc, ldc, accumulate);
      });
      return;
    }
  }
  ProductScope scope(m, n, k, cuttable);
  blasGemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}
}  // namespace
#endif

void gemmF32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate) {
#if GRADSERVE_CBLAS
  if (m > 0 && n > 0 && k > 0) {
    product<float>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    return;
  }
#endif
  gemmPortable<float>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

void gemmF64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int64_t lda, const double* B,
             int64_t ldb, double* C, int64_t ldc, bool accumulate) {
#if GRADSERVE_CBLAS
  if (m > 0 && n > 0 && k > 0) {
    product<double>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
    return;
  }
#endif
  gemmPortable<double>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
}

BlasInfo blasInfo() {
#if GRADSERVE_OPENBLAS
  std::string cfg = openblas_get_config();
  // "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." -> "OpenBLAS 0.3.21 (cblas)"
  size_t sp = cfg.find(' ', cfg.find(' ') + 1);
  return {cfg.substr(0, sp) + " (cblas)", true, libraryThreads()};
#elif GRADSERVE_CBLAS
  return {GRADSERVE_CBLAS_NAME " (cblas)", true, 0};
#else
  return {"portable gemm (no CBLAS found: slow)", false, 1};
#endif
}

}  // namespace gs
