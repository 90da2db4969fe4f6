// Kernel tests: data movement (transpose, broadcast, slice, pad, concat, roll, triangles), indexing with in-range and
// out-of-range indices, casts, shape checks, and the native buffer pool that program runs allocate from.
#include <cstring>
#include <limits>
#include <thread>

#include "../../binding/pool.h"
#include "../kernels.h"
#include "check.h"

using namespace gs;
using gst::view;

namespace {
std::vector<double> iota(size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; i++) v[i] = double(i);
  return v;
}
}  // namespace

TEST(transpose_broadcast_slice_pad_concat) {
  auto x = iota(24);
  std::vector<double> t(24);
  CHECK((planTranspose({2, 3, 4}, {2, 0, 1}) == Shape{4, 2, 3}));
  transpose(view(x), {2, 3, 4}, {2, 0, 1}, view(t));
  std::vector<double> want(24);
  for (int64_t i = 0; i < 2; i++)
    for (int64_t j = 0; j < 3; j++)
      for (int64_t k = 0; k < 4; k++) want[size_t((k * 2 + i) * 3 + j)] = x[size_t((i * 3 + j) * 4 + k)];
  CHECK_EQUAL(t, want);
  CHECK_THROWS(ErrCode::InvalidArgument, planTranspose({2, 3}, {0, 0}));

  std::vector<double> col{1, 2, 3}, wide(24);
  checkBroadcastTo({3, 1}, {2, 3, 4});
  broadcastTo(view(col), {3, 1}, {2, 3, 4}, view(wide));
  for (size_t k = 0; k < 24; k++) CHECK(wide[k] == col[(k / 4) % 3]);
  CHECK_THROWS(ErrCode::InvalidArgument, checkBroadcastTo({3, 2}, {3, 4}));

  // rows 4, 2, 0 and columns 1, 3 of a 5x4 matrix; the backward slice puts them back and zeros the rest
  auto m = iota(20);
  std::vector<double> s(6), back(20);
  checkSlice({5, 4}, {4, 1}, {-2, 2}, {3, 2});
  slice(view(m), {5, 4}, {4, 1}, {-2, 2}, {3, 2}, view(s));
  CHECK_EQUAL(s, (std::vector<double>{17, 19, 9, 11, 1, 3}));
  sliceBackward(view(s), {3, 2}, {4, 1}, {-2, 2}, {5, 4}, view(back));
  for (size_t k = 0; k < 20; k++) CHECK(back[k] == ((k / 4) % 2 == 0 && k % 2 == 1 ? m[k] : 0));
  // zero-size slices: an empty output has no data pointer at all, as an empty typed array from JS
  sliceBackward(Arr{DType::F64, nullptr, 0}, {0, 2}, {0, 0}, {1, 1}, {0, 4}, Arr{DType::F64, nullptr, 0});
  slice(Arr{DType::F64, nullptr, 0}, {0, 4}, {0, 0}, {1, 1}, {0, 2}, Arr{DType::F64, nullptr, 0});
  CHECK_THROWS(ErrCode::InvalidArgument, checkSlice({5, 4}, {4, 1}, {-2, 2}, {4, 2}));
  CHECK_THROWS(ErrCode::InvalidArgument, checkSlice({5, 4}, {0, 0}, {0, 1}, {1, 1}));

  std::vector<double> p(20);
  CHECK((planPad({2, 2}, {{1, 2}, {0, 2}}) == Shape{5, 4}));
  std::vector<double> two{1, 2, 3, 4};
  pad(view(two), {2, 2}, {{1, 2}, {0, 2}}, -1, view(p));
  CHECK_EQUAL(p, (std::vector<double>{-1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}));

  std::vector<double> a{1, 2, 3, 4}, b{5, 6}, c(6);
  CHECK((planConcat({DType::F64, DType::F64}, {{2, 2}, {2, 1}}, 1) == Shape{2, 3}));
  concat({view(a), view(b)}, {{2, 2}, {2, 1}}, 1, view(c));
  CHECK_EQUAL(c, (std::vector<double>{1, 2, 5, 3, 4, 6}));
  CHECK_THROWS(ErrCode::InvalidArgument, planConcat({DType::F64, DType::F32}, {{2, 2}, {2, 1}}, 1));
}

TEST(roll_and_triangles) {
  auto x = iota(12);
  std::vector<double> out(12);
  // shifts -1 on rows and 5 (= 1 mod 4) on columns: out[(i - 1) mod 3, (j + 1) mod 4] = x[i, j]
  roll(view(x), {3, 4}, {-1, 5}, view(out));
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 4; j++) CHECK(out[size_t(((i + 2) % 3) * 4 + (j + 1) % 4)] == x[size_t(i * 4 + j)]);
  // extreme shifts are taken modulo the axis size without overflowing
  const int64_t s0 = std::numeric_limits<int64_t>::min(), s1 = std::numeric_limits<int64_t>::max();
  roll(view(x), {3, 4}, {s0, s1}, view(out));
  const int64_t r0 = (s0 % 3 + 3) % 3, r1 = (s1 % 4 + 4) % 4;
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 4; j++) CHECK(out[size_t(((i + r0) % 3) * 4 + (j + r1) % 4)] == x[size_t(i * 4 + j)]);

  checkTriangle({3, 4});
  std::vector<double> up(12), low(12);
  triangle(view(x), {3, 4}, 1, true, view(up));
  triangle(view(x), {3, 4}, -1, false, view(low));
  for (int64_t i = 0; i < 3; i++)
    for (int64_t j = 0; j < 4; j++) {
      CHECK(up[size_t(i * 4 + j)] == (j - i >= 1 ? x[size_t(i * 4 + j)] : 0));
      CHECK(low[size_t(i * 4 + j)] == (j - i <= -1 ? x[size_t(i * 4 + j)] : 0));
    }
  // offsets far outside the matrix keep everything or nothing
  triangle(view(x), {3, 4}, int64_t(1) << 52, false, view(low));
  CHECK_EQUAL(low, x);
  triangle(view(x), {3, 4}, -(int64_t(1) << 52), false, view(low));
  CHECK_EQUAL(low, std::vector<double>(12, 0.0));
}

TEST(gather_and_scatter_add_with_out_of_range_indices) {
  auto x = iota(12);  // (3, 4)
  std::vector<int32_t> ind{2, -1, 0};
  CHECK((planGather({3, 4}, {3}, 1) == Shape{3, 3}));
  std::vector<double> g(9);
  gather(view(x), {3, 4}, view(ind), {3}, 1, view(g));
  CHECK_EQUAL(g, (std::vector<double>{2, 3, 0, 6, 7, 4, 10, 11, 8}));
  for (int64_t bad : {int64_t(4), int64_t(-5), std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    std::vector<int64_t> bi{0, bad};
    std::vector<double> o(6);
    CHECK_THROWS(ErrCode::IndexOutOfRange, gather(view(x), {3, 4}, view(bi), {2}, 1, view(o)));
    CHECK_THROWS(ErrCode::IndexOutOfRange, scatterAdd(view(o), view(bi), {2}, 1, {3, 4}, view(x)));
  }
  std::vector<int32_t> bi32{std::numeric_limits<int32_t>::min()};
  std::vector<double> o3(3);
  CHECK_THROWS(ErrCode::IndexOutOfRange, gather(view(x), {3, 4}, view(bi32), {1}, 1, view(o3)));

  // scatterAdd is gather's transpose: duplicates accumulate
  std::vector<int64_t> dup{1, 1, -3};
  std::vector<double> gr{1, 2, 3, 4, 5, 6}, acc(6);
  checkScatterAdd(DType::F64, {3, 2}, {3}, 0, {3, 2});
  scatterAdd(view(gr), view(dup), {3}, 0, {3, 2}, view(acc));
  CHECK_EQUAL(acc, (std::vector<double>{5, 6, 4, 6, 0, 0}));
  CHECK_THROWS(ErrCode::InvalidArgument, checkScatterAdd(DType::F64, {2, 2}, {3}, 0, {3, 2}));

  // gather_elements / scatter_add_elements along axis 1 of (2, 3)
  std::vector<double> y{10, 11, 12, 20, 21, 22}, ge(4);
  std::vector<int64_t> ei{2, 0, -1, 1};
  checkGatherElements({2, 3}, {2, 2}, 1);
  gatherElements(view(y), {2, 3}, view(ei), {2, 2}, 1, true, "index", view(ge));
  CHECK_EQUAL(ge, (std::vector<double>{12, 10, 22, 21}));
  CHECK_THROWS(ErrCode::IndexOutOfRange, gatherElements(view(y), {2, 3}, view(ei), {2, 2}, 1, false, "class label", view(ge)));
  std::vector<double> upd{1, 2, 3, 4}, se(6);
  checkScatterAddElements(true, DType::F64, {2, 3}, {2, 2}, DType::F64, 1);
  std::vector<int64_t> sei{2, 2, 0, -3};
  scatterAddElements(view(y), true, {2, 3}, view(sei), {2, 2}, view(upd), 1, view(se));
  CHECK_EQUAL(se, (std::vector<double>{10, 11, 15, 27, 21, 22}));
  std::vector<int64_t> seBad{0, 3, 0, 0};
  CHECK_THROWS(ErrCode::IndexOutOfRange, scatterAddElements(view(y), true, {2, 3}, view(seBad), {2, 2}, view(upd), 1, view(se)));
  CHECK_THROWS(ErrCode::InvalidArgument, checkGatherElements({2, 3}, {3, 2}, 1));
}

TEST(one_hot_and_casts) {
  std::vector<int64_t> ind{0, 2, -1, 3};
  CHECK((planOneHot({4}, 3, 1) == Shape{4, 3}));
  std::vector<float> oh(12);
  oneHot(view(ind), {4}, 3, 1, view(oh));
  // indices outside [0, depth) give a row of zeros
  CHECK_EQUAL(oh, (std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}));

  std::vector<double> f{-2.7, 2.7, 0, 1e9};
  std::vector<int32_t> i32(4);
  cast(view(f), view(i32));
  CHECK_EQUAL(i32, (std::vector<int32_t>{-2, 2, 0, 1000000000}));
  for (double bad : {double(NAN), 3e9, -2147483649.0, double(INFINITY)}) {
    std::vector<double> b{bad};
    std::vector<int32_t> o(1);
    CHECK_THROWS(ErrCode::InvalidCast, cast(view(b), view(o)));
  }
  std::vector<double> big{9.3e18};
  std::vector<int64_t> o64(1);
  CHECK_THROWS(ErrCode::InvalidCast, cast(view(big), view(o64)));
  std::vector<int64_t> wide{int64_t(1) << 40};
  std::vector<int32_t> narrow(1);
  CHECK_THROWS(ErrCode::InvalidCast, cast(view(wide), view(narrow)));
  std::vector<double> nb{NAN, 0, -0.0, 2};
  std::vector<uint8_t> bools(4);
  cast(view(nb), view(bools));
  CHECK_EQUAL(bools, (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(shape_checks_refuse_overflow) {
  CHECK(numel({2, 3, 4}) == 24);
  CHECK(numel({}) == 1);
  CHECK_THROWS(ErrCode::InvalidArgument, numel({-1, 3}));
  CHECK_THROWS(ErrCode::InvalidArgument, numel({int64_t(1) << 30, int64_t(1) << 30}));
  CHECK_THROWS(ErrCode::InvalidArgument, numel({int64_t(1) << 62, int64_t(1) << 62, 4}));
  const Shape a{2, 1, 3}, b{4, 1}, c{3, 2};
  CHECK((broadcastShapes({&a, &b}) == Shape{2, 4, 3}));
  CHECK_THROWS(ErrCode::InvalidArgument, broadcastShapes({&a, &c}));
}

TEST(buffer_pool_reuses_caps_and_trims) {
  auto& pool = gsb::BufferPool::instance();
  pool.setCap(size_t(1) << 20);
  pool.trim();
  const auto s0 = pool.stats();
  void* a = pool.acquire(100);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 1, 100);
  pool.release(a, 100);
  void* b = pool.acquire(90);  // the same 128-byte size class: the cached buffer comes back
  CHECK(b == a);
  CHECK(pool.stats().hits == s0.hits + 1);
  std::memset(b, 2, 128);
  pool.release(b, 90);
  CHECK(pool.stats().cachedBytes == 128);
  void* z = pool.acquire(0);
  CHECK(z != nullptr);
  pool.release(z, 0);

  // Beyond the cap a released buffer goes back to the allocator at once.
  pool.setCap(4096);
  void* big = pool.acquire(size_t(64) << 10);
  pool.release(big, size_t(64) << 10);
  CHECK(pool.stats().cachedBytes <= 4096);

  // Several threads at once: every byte handed out comes back.
  pool.setCap(size_t(1) << 20);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&pool, t] {
      for (int i = 0; i < 500; i++) {
        const size_t n = size_t(64 * (1 + (i + t) % 7));
        auto* p = static_cast<unsigned char*>(pool.acquire(n));
        p[0] = p[n - 1] = 7;
        pool.release(p, n);
      }
    });
  for (auto& th : ts) th.join();
  CHECK(pool.stats().liveBytes == s0.liveBytes);
  pool.trim();
  CHECK(pool.stats().cachedBytes == 0);
}
