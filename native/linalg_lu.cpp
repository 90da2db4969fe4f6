// LU factorizations of batches (native/linalg_lu.h) and the per-run memo behind FactorizationScope.
#include "linalg_lu.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "linalg_lapack.h"
#include "linalg_solve.h"

namespace gs {
namespace la {
namespace {

// One batch of LU factorizations: the matrices as given (the memo's key; empty outside a memo), their LUs, pivots
// and infos.
struct LuEntry {
  DType dt;
  int n;
  int64_t count;
  std::vector<unsigned char> a, lu;
  std::vector<int> piv, info;
};

struct RunMemo {
  std::mutex mu;
  std::vector<std::shared_ptr<const LuEntry>> lus;
  size_t bytes = 0;
};

// The memo of the FactorizationScope open on this thread (null outside a program run, or in a run with fewer than
// two steps that factor).
thread_local RunMemo* currentMemo = nullptr;

// Batches from this many elements in all are remembered, up to kMemoBytes per run (their copy and their LU).
constexpr int64_t kMemoElements = 256;
constexpr size_t kMemoBytes = size_t(64) << 20;
// A thread's scratch keeps its capacity between calls only for factorizations up to this size; larger ones get
// buffers of their own, freed with the LuBatch, so a worker thread never holds on to the largest LU it ever made.
constexpr size_t kScratchBytes = size_t(8) << 20;

template <typename T> constexpr DType dtypeOf() { return std::is_same<T, float>::value ? DType::F32 : DType::F64; }

template <typename T> LuBatch<T> view(const std::shared_ptr<const LuEntry>& e) {
  return {e, reinterpret_cast<const T*>(e->lu.data()), e->piv.data(), e->info.data()};
}

}  // namespace

#if GRADSERVE_LAPACK
template <typename T> LuBatch<T> factorBatch(int64_t count, int n, const T* a) {
  const int64_t nn = int64_t(n) * n;
  const size_t bytes = size_t(count * nn) * sizeof(T);
  RunMemo* memo = currentMemo;
  const bool remember = memo != nullptr && count * nn >= kMemoElements;
  if (remember) {
    std::vector<std::shared_ptr<const LuEntry>> known;
    {
      std::lock_guard<std::mutex> lock(memo->mu);
      known = memo->lus;
    }
    for (const auto& e : known)
      if (e->dt == dtypeOf<T>() && e->n == n && e->count == count && std::memcmp(e->a.data(), a, bytes) == 0)
        return view<T>(e);
  }
  // outside the memo, this thread's scratch entry (its buffers keep their capacity from one call to the next), unless
  // the factorization is too large to keep around
  thread_local LuEntry scratch;
  const bool own = remember || bytes > kScratchBytes;
  std::shared_ptr<LuEntry> owned = own ? std::make_shared<LuEntry>() : nullptr;
  LuEntry* e = own ? owned.get() : &scratch;
  e->dt = dtypeOf<T>();
  e->n = n;
  e->count = count;
  const auto* raw = reinterpret_cast<const unsigned char*>(a);
  e->lu.assign(raw, raw + bytes);
  if (remember) e->a = e->lu;
  e->piv.resize(size_t(std::max<int64_t>(count * n, 1)));
  e->info.assign(size_t(count), 0);
  T* lu = reinterpret_cast<T*>(e->lu.data());
  if (n > 0) {
    forEachMatrix(count, lapackWork(count, double(count) * nn * n / 1.5), [&](int64_t i, ErrCode&) -> std::string {
      int info = 0;
      {
        CallScope scope(double(n) * n * n);
        Lapack<T>::getrf(n, lu + i * nn, e->piv.data() + i * n, &info);
      }
      if (info < 0) invalid("getrf: argument " + std::to_string(-info) + " is invalid");
      e->info[size_t(i)] = info;
      return {};
    });
  }
  if (remember) {
    std::lock_guard<std::mutex> lock(memo->mu);
    if (memo->bytes + 2 * bytes <= kMemoBytes) {
      memo->lus.push_back(owned);
      memo->bytes += 2 * bytes;
    }
  }
  return {owned, lu, e->piv.data(), e->info.data()};
}

template LuBatch<float> factorBatch(int64_t, int, const float*);
template LuBatch<double> factorBatch(int64_t, int, const double*);
#endif

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

template double detFromLu(int, const float*, const int*, bool);
template double detFromLu(int, const double*, const int*, bool);

}  // namespace la

FactorizationScope::FactorizationScope() {
  if (la::currentMemo == nullptr) {
    la::currentMemo = new la::RunMemo();
    owner_ = true;
  }
}

FactorizationScope::~FactorizationScope() {
  if (owner_) {
    delete la::currentMemo;
    la::currentMemo = nullptr;
  }
}

}  // namespace gs
