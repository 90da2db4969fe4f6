// Kernel tests: convolution and its two adjoints, max and average pooling and their backward kernels, row
// normalization. References are direct loops over the windows; the adjoints are checked by <A u, v> = <u, A^T v>.
#include <algorithm>

#include "../kernels.h"
#include "check.h"

using namespace gs;
using gst::view;

namespace {
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

// y[n, o, p] = b[o] + sum over the group's channels c and taps k of x[n, c, p*s + k*d - pb] * w[o, c - group start, k]
std::vector<double> refConv2d(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                              const Shape& ws, const std::vector<double>& b, const ConvAttrs& a, const Shape& ys) {
  std::vector<double> y(size_t(numel(ys)));
  const int64_t Cg = ws[1], Og = ys[1] / a.groups;
  for (int64_t n = 0; n < ys[0]; n++)
    for (int64_t o = 0; o < ys[1]; o++)
      for (int64_t i = 0; i < ys[2]; i++)
        for (int64_t j = 0; j < ys[3]; j++) {
          double s = b.empty() ? 0 : b[size_t(o)];
          for (int64_t c = 0; c < Cg; c++)
            for (int64_t ki = 0; ki < ws[2]; ki++)
              for (int64_t kj = 0; kj < ws[3]; kj++) {
                const int64_t hi = i * a.strides[0] + ki * a.dilations[0] - a.pads[0].first;
                const int64_t wj = j * a.strides[1] + kj * a.dilations[1] - a.pads[1].first;
                if (hi < 0 || hi >= xs[2] || wj < 0 || wj >= xs[3]) continue;
                const int64_t ci = (o / Og) * Cg + c;
                s += x[size_t(((n * xs[1] + ci) * xs[2] + hi) * xs[3] + wj)] *
                     w[size_t(((o * Cg + c) * ws[2] + ki) * ws[3] + kj)];
              }
          y[size_t(((n * ys[1] + o) * ys[2] + i) * ys[3] + j)] = s;
        }
  return y;
}
}  // namespace

TEST(conv2d_grouped_strided_dilated_against_reference) {
  gst::Rng r(10);
  ConvAttrs a;
  a.strides = {2, 1};
  a.dilations = {1, 2};
  a.pads = {{1, 1}, {0, 1}};
  a.outputPadding = {0, 0};
  a.groups = 2;
  const Shape xs{2, 4, 7, 6}, ws{6, 2, 3, 2}, bs{6};
  auto x = gst::randomVec<double>(r, size_t(numel(xs))), w = gst::randomVec<double>(r, size_t(numel(ws)));
  auto b = gst::randomVec<double>(r, 6);
  ConvPlan p = planConv(DType::F64, xs, DType::F64, ws, &bs, DType::F64, a);
  CHECK((p.out == Shape{2, 6, 4, 5}));
  std::vector<double> y(size_t(numel(p.out)));
  Arr bv = view(b);
  conv(view(x), view(w), &bv, p.g, view(y));
  CHECK_CLOSE(y, refConv2d(x, xs, w, ws, b, a, p.out), 1e-12, 1e-12);

  // float32 through the same geometry
  std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), yf(y.size());
  conv(view(xf), view(wf), nullptr, p.g, view(yf));
  CHECK_CLOSE(yf, refConv2d(x, xs, w, ws, {}, a, p.out), 1e-5, 1e-5);

  // conv_transpose of this geometry maps the output side back to x's shape
  ConvPlan pt = planConvTranspose(DType::F64, p.out, DType::F64, ws, nullptr, DType::F64, a);
  CHECK((pt.out == xs));

  // The adjoints: <conv(x, w), v> = <x, convTranspose(v, w)> = <w, convWeightGrad(x, v)>
  auto v = gst::randomVec<double>(r, y.size());
  std::vector<double> y0(y.size()), xt(x.size()), gw(w.size());
  conv(view(x), view(w), nullptr, p.g, view(y0));
  convTranspose(view(v), view(w), nullptr, p.g, view(xt));
  convWeightGrad(view(x), view(v), p.g, view(gw));
  const double lhs = dot(y0, v);
  CHECK(gst::close(dot(x, xt), lhs, 1e-12, 1e-12));
  CHECK(gst::close(dot(w, gw), lhs, 1e-12, 1e-12));

  CHECK_THROWS(ErrCode::InvalidArgument, planConv(DType::F64, {2, 4, 7, 6}, DType::F64, {6, 3, 3, 2}, nullptr, DType::F64, a));
  a.groups = 0;
  CHECK_THROWS(ErrCode::InvalidArgument, planConv(DType::F64, xs, DType::F64, ws, nullptr, DType::F64, a));
}

TEST(conv_many_images_split_across_threads) {
  // Enough work for the convolution to split its images across threads when more than one core is granted; the
  // result must not depend on the split.
  gst::Rng r(11);
  ConvAttrs a;
  a.strides = {1, 1};
  a.dilations = {1, 1};
  a.pads = {{1, 1}, {1, 1}};
  a.outputPadding = {0, 0};
  const Shape xs{16, 8, 24, 24}, ws{16, 8, 3, 3};
  auto x = gst::randomVec<double>(r, size_t(numel(xs))), w = gst::randomVec<double>(r, size_t(numel(ws)));
  ConvPlan p = planConv(DType::F64, xs, DType::F64, ws, nullptr, DType::F64, a);
  std::vector<double> y(size_t(numel(p.out)));
  conv(view(x), view(w), nullptr, p.g, view(y));
  CHECK_CLOSE(y, refConv2d(x, xs, w, ws, {}, a, p.out), 1e-12, 1e-12);
}

TEST(pooling_against_reference_and_adjoints) {
  gst::Rng r(12);
  const Shape xs{2, 3, 5, 6};
  auto x = gst::randomVec<double>(r, size_t(numel(xs)));
  x[7] = x[8];  // a tie: the first maximum in window order wins
  const Pads pads{{0, 1}, {1, 1}};
  PoolGeom g = planPool(xs, {2, 3}, {2, 2}, pads, {1, 1}, false);
  CHECK((g.outShape == Shape{2, 3, 3, 3}));
  const size_t on = size_t(numel(g.outShape));
  std::vector<double> mx(on), av(on), avp(on), wantMx(on), wantAv(on), wantAvp(on);
  maxPool(view(x), g, view(mx));
  avgPool(view(x), g, false, view(av));
  avgPool(view(x), g, true, view(avp));
  for (int64_t pl = 0; pl < 6; pl++)
    for (int64_t i = 0; i < 3; i++)
      for (int64_t j = 0; j < 3; j++) {
        double best = -INFINITY, sum = 0;
        int64_t count = 0, countPad = 0;
        for (int64_t ki = 0; ki < 2; ki++)
          for (int64_t kj = 0; kj < 3; kj++) {
            const int64_t h = i * 2 + ki - pads[0].first, w = j * 2 + kj - pads[1].first;
            if (h < 5 + pads[0].second && w < 6 + pads[1].second) countPad++;
            if (h < 0 || h >= 5 || w < 0 || w >= 6) continue;
            const double v = x[size_t((pl * 5 + h) * 6 + w)];
            best = std::max(best, v);
            sum += v;
            count++;
          }
        const size_t o = size_t((pl * 3 + i) * 3 + j);
        wantMx[o] = best;
        wantAv[o] = sum / double(count);
        wantAvp[o] = sum / double(countPad);
      }
  CHECK_CLOSE(mx, wantMx, 0, 0);
  CHECK_CLOSE(av, wantAv, 1e-14, 1e-15);
  CHECK_CLOSE(avp, wantAvp, 1e-14, 1e-15);

  // maxPoolGather(x, x) is the max pool; maxPoolScatter and avgPoolBackward are the transposes.
  std::vector<double> gathered(on), h = gst::randomVec<double>(r, x.size()), v = gst::randomVec<double>(r, on);
  maxPoolGather(view(x), view(x), g, view(gathered));
  CHECK_CLOSE(gathered, mx, 0, 0);
  std::vector<double> hg(on), scattered(x.size()), avBack(x.size()), avx(on);
  maxPoolGather(view(h), view(x), g, view(hg));
  maxPoolScatter(view(v), view(x), g, view(scattered));
  CHECK(gst::close(dot(h, scattered), dot(hg, v), 1e-12, 1e-12));
  avgPool(view(h), g, true, view(avx));
  avgPoolBackward(view(v), g, true, view(avBack));
  CHECK(gst::close(dot(h, avBack), dot(avx, v), 1e-12, 1e-12));

  CHECK_THROWS(ErrCode::InvalidArgument, planPool(xs, {7, 3}, {1, 1}, pads, {1, 1}, false));
  CHECK_THROWS(ErrCode::InvalidArgument, planPool(xs, {2}, {1}, {{0, 0}}, {1}, false));
}

TEST(normalize_rows_against_reference) {
  gst::Rng r(13);
  const Shape shape{3, 2, 4};
  auto x = gst::randomVec<double>(r, 24, -3, 3);
  for (int center = 0; center < 2; center++) {
    std::vector<double> out(24), want(24);
    checkNormalize(DType::F64, shape, 1, 1e-5);
    normalize(view(x), shape, 1, 1e-5, center, view(out));
    for (size_t row = 0; row < 3; row++) {
      double mean = 0, sq = 0;
      for (size_t k = 0; k < 8; k++) mean += x[row * 8 + k] / 8;
      for (size_t k = 0; k < 8; k++) {
        const double d = center ? x[row * 8 + k] - mean : x[row * 8 + k];
        sq += d * d / 8;
      }
      for (size_t k = 0; k < 8; k++)
        want[row * 8 + k] = (center ? x[row * 8 + k] - mean : x[row * 8 + k]) / std::sqrt(sq + 1e-5);
    }
    CHECK_CLOSE(out, want, 1e-12, 1e-12);
  }
  CHECK_THROWS(ErrCode::InvalidArgument, checkNormalize(DType::I32, shape, 1, 1e-5));
  CHECK_THROWS(ErrCode::InvalidArgument, checkNormalize(DType::F64, shape, 4, 1e-5));
  CHECK_THROWS(ErrCode::InvalidArgument, checkNormalize(DType::F64, shape, 1, -1));
}
