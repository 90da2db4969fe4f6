// Kernel tests: gemm and matmul, elementwise unary and binary ops, reductions, softmax, scans and sorting, each
// against a plain reference loop.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>

#include "../gemm.h"
#include "../idle_cores.h"
#include "../kernels.h"
#include "../parallel.h"
#include "check.h"
#include <stdexcept>
#include <string>
#include <thread>

using namespace gs;
using gst::view;

namespace {

// Row-major C = op(A) op(B) by the textbook triple loop.
template <typename T>
std::vector<T> refGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const std::vector<T>& A,
                       const std::vector<T>& B) {
  std::vector<T> C(size_t(m * n), T(0));
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++)
        s += double(ta ? A[size_t(p * m + i)] : A[size_t(i * k + p)]) * double(tb ? B[size_t(j * k + p)] : B[size_t(p * n + j)]);
      C[size_t(i * n + j)] = T(s);
    }
  return C;
}

// op(A) op(B) through gemmF64 (into a C that starts non-zero: the product overwrites it) and gemmF32 (A and B
// rounded to float), each against `want` from refGemm.
void checkBlasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const std::vector<double>& A,
                   const std::vector<double>& B, const std::vector<double>& want, double tol64, double tol32) {
  std::vector<double> C(size_t(m * n), 5.0);
  gemmF64(ta, tb, m, n, k, A.data(), ta ? m : k, B.data(), tb ? k : n, C.data(), n);
  CHECK_CLOSE(C, want, tol64, tol64);
  std::vector<float> Af(A.begin(), A.end()), Bf(B.begin(), B.end()), Cf(size_t(m * n));
  gemmF32(ta, tb, m, n, k, Af.data(), ta ? m : k, Bf.data(), tb ? k : n, Cf.data(), n);
  CHECK_CLOSE(Cf, want, tol32, tol32);
}

// Flat index into `s` (contiguous) of the output position `idx` of a broadcast to `out`.
int64_t broadcastIndex(const Shape& s, const Shape& out, const Shape& idx) {
  int64_t flat = 0;
  const size_t lead = out.size() - s.size();
  for (size_t d = 0; d < s.size(); d++) flat = flat * s[d] + (s[d] == 1 ? 0 : idx[lead + d]);
  return flat;
}

// Calls f(idx) for every position of `shape` in row-major order.
template <typename F> void forEachIndex(const Shape& shape, F&& f) {
  Shape idx(shape.size(), 0);
  const int64_t n = numel(shape);
  for (int64_t i = 0; i < n; i++) {
    f(idx);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

TEST(gemm_all_transposes_against_reference) {
  gst::Rng r(1);
  // Odd sizes leave remainders in every blocking of the portable kernel.
  const int64_t m = 7, n = 9, k = 13;
  for (int t = 0; t < 4; t++) {
    const bool ta = t & 1, tb = t & 2;
    auto A = gst::randomVec<double>(r, size_t(m * k)), B = gst::randomVec<double>(r, size_t(k * n));
    const auto want = refGemm(ta, tb, m, n, k, A, B);
    checkBlasGemm(ta, tb, m, n, k, A, B, want, 1e-12, 1e-5);
    std::vector<double> P(size_t(m * n), 0.0);
    gemmPortable<double>(ta, tb, m, n, k, A.data(), ta ? m : k, B.data(), tb ? k : n, P.data(), n);
    CHECK_CLOSE(P, want, 1e-12, 1e-12);
    // accumulate adds the product to what C holds
    gemmPortable<double>(ta, tb, m, n, k, A.data(), ta ? m : k, B.data(), tb ? k : n, P.data(), n, true);
    std::vector<double> twice(want);
    for (auto& v : twice) v *= 2;
    CHECK_CLOSE(P, twice, 1e-12, 1e-12);
  }
}

TEST(gemm_split_products_against_reference) {
  // m*n*k over the split threshold (2^24): cut over rows at multiples of 48 (the second shape has too few); odd sizes
  gst::Rng r(3);
  const int64_t shapes[2][3] = {{517, 301, 131}, {131, 771, 263}};
  for (const auto& s : shapes)
    for (int t = 0; t < 4; t++) {
      const int64_t m = s[0], n = s[1], k = s[2];
      const bool ta = t & 1, tb = t & 2;
      auto A = gst::randomVec<double>(r, size_t(m * k)), B = gst::randomVec<double>(r, size_t(k * n));
      checkBlasGemm(ta, tb, m, n, k, A, B, refGemm(ta, tb, m, n, k, A, B), 1e-10, 1e-4);
    }
}

// parallelFor on the kept helper threads: every index once, loops back to back (a helper still polling from the last
// one), loops a few ms apart, two loops at once (one gets the helpers, the other threads of its own), and the lowest
// failing index's error.
TEST(parallel_for_runs_every_index_once_on_helpers_and_beside_them) {
  for (int round = 0; round < 50; round++) {
    std::vector<std::atomic<int>> hits(97);
    parallelFor(97, 1 + round % 4, [&](int w, int64_t i) {
      CHECK(w >= 0 && w < 4);
      hits[size_t(i)].fetch_add(1);
    });
    for (auto& h : hits) CHECK(h.load() == 1);
  }
  std::atomic<int64_t> sum{0};
  auto loops = [&] {
    for (int r = 0; r < 20; r++) parallelFor(200, 3, [&](int, int64_t i) { sum.fetch_add(i); });
  };
  std::thread other(loops);
  loops();
  other.join();
  CHECK(sum.load() == 2 * 20 * (199 * 200 / 2));
  // loops a few ms apart: helpers polling between yields (gaps under 5 ms), then asleep after a longer gap
  sum = 0;
  for (int r = 0; r < 12; r++) {
    std::this_thread::sleep_for(std::chrono::microseconds(r < 8 ? 500 + 500 * (r % 4) : 8000));
    parallelFor(50, 2, [&](int, int64_t i) { sum.fetch_add(i); });
  }
  CHECK(sum.load() == 12 * (49 * 50 / 2));
  for (int r = 0; r < 10; r++) {
    bool threw = false;
    try {
      parallelFor(64, 2, [&](int, int64_t i) {
        if (i == 5 || i == 40) throw std::runtime_error("index " + std::to_string(i));
      });
    } catch (const std::runtime_error& e) {
      threw = true;
      CHECK(std::string(e.what()) == "index 5");
    }
    CHECK(threw);
  }
}

TEST(usable_cores_stay_within_one_and_most) {
  CHECK(usableCores(1) == 1);
  for (int i = 0; i < 3; i++) {
    const int c = usableCores(8);
    CHECK(c >= 1 && c <= 8);
  }
}

TEST(own_runnable_threads_count_a_spinning_thread) {
  // The calling thread is running; a second one spinning is runnable whether or not it holds a core right now.
  CHECK(ownRunnableThreads() >= 1);
  std::atomic<bool> stop{false}, started{false};
  std::thread spinner([&] {
    started = true;
    while (!stop.load(std::memory_order_relaxed)) {}
  });
  while (!started) {}
  int most = 0;
  for (int i = 0; i < 50 && most < 2; i++) most = std::max(most, ownRunnableThreads());
  stop = true;
  spinner.join();
  CHECK(most >= 2);
}

TEST(matmul_broadcast_batches_and_integers) {
  gst::Rng r(2);
  // a (2, 1, 3, 4) @ b (3, 4, 5) -> (2, 3, 3, 5): both batch dims broadcast
  const Shape as{2, 1, 3, 4}, bs{3, 4, 5};
  auto a = gst::randomVec<double>(r, 24), b = gst::randomVec<double>(r, 60);
  MatmulPlan p = planMatmul(DType::F64, as, DType::F64, bs, false, false);
  CHECK((p.out == Shape{2, 3, 3, 5}));
  std::vector<double> out(size_t(numel(p.out)));
  matmul(view(a), as, view(b), bs, false, false, p, view(out));
  std::vector<double> want(out.size());
  for (int64_t i = 0; i < 2; i++)
    for (int64_t j = 0; j < 3; j++) {
      std::vector<double> A(a.begin() + i * 12, a.begin() + i * 12 + 12), B(b.begin() + j * 20, b.begin() + j * 20 + 20);
      auto C = refGemm(false, false, 3, 5, 4, A, B);
      std::copy(C.begin(), C.end(), want.begin() + (i * 3 + j) * 15);
    }
  CHECK_CLOSE(out, want, 1e-12, 1e-12);

  // INT64 goes through the portable kernel and wraps like the reference (no overflow here)
  std::vector<int64_t> ai{1, -2, 3, 4, 5, -6}, bi{7, 8, 9, 10, -11, 12};
  MatmulPlan pi = planMatmul(DType::I64, {2, 3}, DType::I64, {3, 2}, false, false);
  std::vector<int64_t> oi(4);
  matmul(view(ai), {2, 3}, view(bi), {3, 2}, false, false, pi, view(oi));
  CHECK_EQUAL(oi, (std::vector<int64_t>{-44, 24, 139, 10}));

  CHECK_THROWS(ErrCode::InvalidArgument, planMatmul(DType::F32, {2, 3}, DType::F32, {4, 2}, false, false));
  CHECK_THROWS(ErrCode::InvalidArgument, planMatmul(DType::F32, {2, 3}, DType::F64, {3, 2}, false, false));
  CHECK_THROWS(ErrCode::InvalidArgument, planMatmul(DType::F32, {int64_t(1) << 40, 1 << 20}, DType::F32,
                                                    {1 << 20, int64_t(1) << 40}, false, false));
}

TEST(unary_every_op_fp32_agrees_with_fp64) {
  gst::Rng r(3);
  // 37 values: the SIMD paths run full vectors and a scalar tail. Both domains of the partial functions appear.
  auto x64 = gst::randomVec<double>(r, 37, -1.4, 1.4);
  x64[0] = 0.0;
  x64[1] = 1.5;
  std::vector<float> x32(x64.begin(), x64.end());
  for (size_t i = 0; i < sizeof(kUnaryOps) / sizeof(kUnaryOps[0]); i++) {
    const UnaryOp op = UnaryOp(i);
    std::vector<double> y64(x64.size());
    std::vector<float> y32(x32.size());
    unary(op, view(x64), view(y64), 0.25);
    unary(op, view(x32), view(y32), 0.25);
    if (!CHECK_CLOSE(y32, y64, 2e-4, 2e-5)) std::fprintf(stderr, "  op %s\n", kUnaryOps[i].name);
  }
}

TEST(unary_against_libm_and_integer_edges) {
  std::vector<double> x{-2.5, -1, -0.0, 0.5, 3};
  std::vector<double> y(x.size()), want(x.size());
  auto run = [&](UnaryOp op, double (*f)(double)) {
    unary(op, view(x), view(y));
    for (size_t i = 0; i < x.size(); i++) want[i] = f(x[i]);
    CHECK_CLOSE(y, want, 1e-14, 1e-15);
  };
  run(UnaryOp::Exp, [](double v) { return std::exp(v); });
  run(UnaryOp::Tanh, [](double v) { return std::tanh(v); });
  run(UnaryOp::Sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); });
  run(UnaryOp::Relu, [](double v) { return v > 0 ? v : 0.0; });
  run(UnaryOp::Erf, [](double v) { return std::erf(v); });
  run(UnaryOp::Floor, [](double v) { return std::floor(v); });

  // Integer negation, abs and square wrap around instead of overflowing.
  const int32_t lo = std::numeric_limits<int32_t>::min();
  std::vector<int32_t> xi{lo, -7, 0, 46341, std::numeric_limits<int32_t>::max()}, yi(5);
  unary(UnaryOp::Neg, view(xi), view(yi));
  CHECK_EQUAL(yi, (std::vector<int32_t>{lo, 7, 0, -46341, lo + 1}));
  unary(UnaryOp::Abs, view(xi), view(yi));
  CHECK_EQUAL(yi, (std::vector<int32_t>{lo, 7, 0, 46341, std::numeric_limits<int32_t>::max()}));
  unary(UnaryOp::Square, view(xi), view(yi));
  CHECK_EQUAL(yi, (std::vector<int32_t>{0, 49, 0, int32_t(46341u * 46341u), 1}));
  CHECK_THROWS(ErrCode::InvalidArgument, unary(UnaryOp::Exp, view(xi), view(yi)));
}

TEST(binary_broadcasting_against_reference) {
  gst::Rng r(4);
  const Shape as{2, 3, 1}, bs{1, 4};
  auto a = gst::randomVec<double>(r, 6, 0.5, 2), b = gst::randomVec<double>(r, 4, 0.5, 2);
  for (size_t i = 0; i < sizeof(kBinaryOps) / sizeof(kBinaryOps[0]); i++) {
    const BinaryOp op = BinaryOp(i);
    BinaryPlan p = planBinary(op, DType::F64, as, DType::F64, bs);
    CHECK((p.out == Shape{2, 3, 4}));
    const bool cmp = p.outDt == DType::BOOL;
    std::vector<double> out(24);
    std::vector<uint8_t> outb(24);
    binary(op, view(a), as, view(b), bs, p.out, cmp ? view(outb) : view(out));
    // The same op on the materialized broadcast operands (equal shapes: the contiguous path).
    std::vector<double> A(24), B(24), same(24);
    std::vector<uint8_t> sameb(24);
    forEachIndex(p.out, [&, k = 0](const Shape& idx) mutable {
      A[size_t(k)] = a[size_t(broadcastIndex(as, p.out, idx))];
      B[size_t(k)] = b[size_t(broadcastIndex(bs, p.out, idx))];
      k++;
    });
    binary(op, view(A), p.out, view(B), p.out, p.out, cmp ? view(sameb) : view(same));
    if (cmp) CHECK_EQUAL(outb, sameb); else CHECK_EQUAL(out, same);
    if (op == BinaryOp::Add || op == BinaryOp::Mul || op == BinaryOp::Div || op == BinaryOp::Less) {
      for (size_t k = 0; k < 24; k++) {
        const double w = op == BinaryOp::Add ? A[k] + B[k] : op == BinaryOp::Mul ? A[k] * B[k]
                       : op == BinaryOp::Div ? A[k] / B[k] : double(A[k] < B[k]);
        CHECK((cmp ? double(outb[k]) : out[k]) == w);
      }
    }
  }
  CHECK_THROWS(ErrCode::InvalidArgument, planBinary(BinaryOp::Add, DType::F64, {2, 3}, DType::F64, {4}));
}

TEST(binary_integer_edges_are_defined) {
  const int32_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  std::vector<int32_t> a{lo, lo, 7, -7, hi, 5, 2}, b{-1, 0, 0, 2, 1, -3, -1}, out(7);
  const Shape s{7};
  binary(BinaryOp::Div, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{lo, 0, 0, -3, hi, -1, -2}));
  binary(BinaryOp::Mod, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{0, 0, 0, 1, 0, -1, 0}));
  binary(BinaryOp::Fmod, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{0, 0, 0, -1, 0, 2, 0}));
  binary(BinaryOp::Add, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{hi, lo, 7, -5, lo, 2, 1}));
  binary(BinaryOp::Sub, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{lo + 1, lo, 7, -9, hi - 1, 8, 3}));
  binary(BinaryOp::Pow, view(a), s, view(b), s, s, view(out));
  CHECK_EQUAL(out, (std::vector<int32_t>{0, 1, 1, 49, hi, 0, 0}));
  std::vector<int64_t> a64{std::numeric_limits<int64_t>::min(), 3}, b64{-1, 40}, o64(2);
  binary(BinaryOp::Mul, view(a64), {2}, view(b64), {2}, {2}, view(o64));
  CHECK(o64[0] == std::numeric_limits<int64_t>::min() && o64[1] == 120);
}

TEST(reductions_against_reference) {
  gst::Rng r(5);
  const Shape shape{2, 3, 4};
  auto x = gst::randomVec<double>(r, 24, -2, 2);
  const std::vector<std::vector<int64_t>> axesList{{0}, {1}, {2}, {0, 2}, {0, 1, 2}};
  for (size_t i = 0; i < sizeof(kReduceOps) / sizeof(kReduceOps[0]); i++) {
    const ReduceOp op = ReduceOp(i);
    for (const auto& axes : axesList) {
      Shape os = planReduce(op, DType::F64, shape, axes);
      const size_t on = size_t(numel(os));
      std::vector<double> out(on);
      reduce(op, view(x), shape, axes, view(out));
      // reference: fold every input into the output position it maps to
      const bool isMax = op == ReduceOp::Max, isMin = op == ReduceOp::Min;
      std::vector<double> acc(on, isMax ? -INFINITY : isMin ? INFINITY : op == ReduceOp::Prod ? 1.0 : 0.0);
      std::vector<double> cnt(on, 0);
      forEachIndex(shape, [&, k = 0](const Shape& idx) mutable {
        int64_t o = 0;
        for (size_t d = 0; d < shape.size(); d++)
          if (std::find(axes.begin(), axes.end(), int64_t(d)) == axes.end()) o = o * shape[d] + idx[d];
        const double v = x[size_t(k++)];
        double& a = acc[size_t(o)];
        a = isMax ? std::max(a, v) : isMin ? std::min(a, v) : op == ReduceOp::Prod ? a * v
          : op == ReduceOp::LogSumExp ? a + std::exp(v) : a + v;
        cnt[size_t(o)]++;
      });
      for (size_t k = 0; k < on; k++) {
        if (op == ReduceOp::Mean) acc[k] /= cnt[k];
        if (op == ReduceOp::LogSumExp) acc[k] = std::log(acc[k]);
      }
      if (!CHECK_CLOSE(out, acc, 1e-12, 1e-12)) std::fprintf(stderr, "  op %s\n", kReduceOps[i].name);
    }
  }
  CHECK_THROWS(ErrCode::InvalidArgument, planReduce(ReduceOp::Max, DType::F64, {3, 0}, {1}));
  CHECK_THROWS(ErrCode::InvalidArgument, planReduce(ReduceOp::Sum, DType::F64, {3, 2}, {2}));
}

TEST(arg_reduce_and_softmax) {
  std::vector<double> x{3, 1, 3, 0, -1, 2, 2, NAN, 5}, sm(9);
  std::vector<int64_t> idx(3);
  CHECK((planArgReduce(DType::F64, {3, 3}, 1) == Shape{3}));
  argReduce(true, view(x), {3, 3}, 1, view(idx));
  CHECK_EQUAL(idx, (std::vector<int64_t>{0, 2, 1}));  // first maximum; the first NaN wins
  argReduce(false, view(x), {3, 3}, 0, view(idx));
  CHECK_EQUAL(idx, (std::vector<int64_t>{1, 2, 1}));  // column 1 reaches a NaN
  std::vector<double> y{1, 2, 3, -1000, 0, 1000};
  std::vector<double> out(6), logOut(6);
  softmax(view(y), {2, 3}, 1, false, view(out));
  softmax(view(y), {2, 3}, 1, true, view(logOut));
  const double e = std::exp(1.0), z = 1 + e + e * e;
  CHECK_CLOSE(out, (std::vector<double>{1 / z, e / z, e * e / z, 0, 0, 1}), 1e-14, 1e-300);
  CHECK_CLOSE(logOut, (std::vector<double>{-std::log(z), 1 - std::log(z), 2 - std::log(z), -2000, -1000, 0}), 1e-14, 1e-12);
}

TEST(cumulative_scans_against_reference) {
  gst::Rng r(6);
  const Shape shape{2, 5, 3};
  auto x = gst::randomVec<double>(r, 30, 0.5, 1.5);
  for (int mode = 0; mode < 8; mode++) {
    const bool prod = mode & 1, exclusive = mode & 2, reverse = mode & 4;
    std::vector<double> out(30), want(30);
    cumulative(prod ? CumulativeOp::CumProd : CumulativeOp::CumSum, view(x), shape, 1, exclusive, reverse, view(out));
    for (int64_t o = 0; o < 2; o++)
      for (int64_t i = 0; i < 3; i++) {
        double acc = prod ? 1 : 0;
        for (int64_t s = 0; s < 5; s++) {
          const int64_t t = reverse ? 4 - s : s;
          const size_t at = size_t((o * 5 + t) * 3 + i);
          if (exclusive) want[at] = acc;
          acc = prod ? acc * x[at] : acc + x[at];
          if (!exclusive) want[at] = acc;
        }
      }
    CHECK_CLOSE(out, want, 1e-13, 1e-14);
  }
  // h[t] = b[t] + a[t] h[t-1]
  auto a = gst::randomVec<double>(r, 30), b = gst::randomVec<double>(r, 30);
  std::vector<double> h(30), want(30);
  linearScan(view(a), view(b), shape, 1, false, view(h));
  for (int64_t o = 0; o < 2; o++)
    for (int64_t i = 0; i < 3; i++) {
      double prev = 0;
      for (int64_t t = 0; t < 5; t++) {
        const size_t at = size_t((o * 5 + t) * 3 + i);
        prev = b[at] + (t == 0 ? 0 : a[at] * prev);
        want[at] = prev;
      }
    }
  CHECK_CLOSE(h, want, 1e-13, 1e-14);
}

TEST(sort_indices_stable_with_nan) {
  std::vector<double> x{2, NAN, 1, 2, -INFINITY, 1};
  std::vector<int64_t> asc(6), desc(3);
  CHECK((planSortIndices(DType::F64, {6}, 0, 3) == Shape{3}));
  sortIndices(view(x), {6}, 0, false, 6, view(asc));
  CHECK_EQUAL(asc, (std::vector<int64_t>{4, 2, 5, 0, 3, 1}));
  sortIndices(view(x), {6}, 0, true, 3, view(desc));
  CHECK_EQUAL(desc, (std::vector<int64_t>{1, 0, 3}));
  // along axis 0 of (3, 2)
  std::vector<int32_t> xi{5, -1, 3, 7, 5, 0};
  std::vector<int64_t> oi(6);
  sortIndices(view(xi), {3, 2}, 0, false, 3, view(oi));
  CHECK_EQUAL(oi, (std::vector<int64_t>{1, 0, 0, 2, 2, 1}));
  CHECK_THROWS(ErrCode::InvalidArgument, planSortIndices(DType::F64, {6}, 0, 7));
}
