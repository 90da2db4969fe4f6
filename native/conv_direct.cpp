// Direct FP32 convolution for up to 64 channels (conv_direct.h), on the AVX2 + FMA tier vecmath.cpp detects.
//
// The column path (conv.cpp) writes a column matrix as large as the work itself and multiplies it by a weight matrix
// of a few rows: for LeNet's layers (1 -> 6 and 6 -> 16 channels, 5x5) writing and packing the columns and the
// products' thin edges cost more than the multiply-adds (conv forward 0.74 + 1.26 ms, input gradient 1.15 + 1.56 ms,
// weight gradient 0.99 + 1.33 ms for batch 64 on one thread). Here nothing is copied but the padded image:
//
// - Each image is copied into zeroed planes of Hp x Wp (Hp = OH + kh - 1, Wp = OW + kw - 1), so that output (oy, ox)
//   of tap (c, ky, kx) reads plane c at (oy + ky, ox + kx).
// - Outputs are computed on the same Wp-wide grid, q = oy * Wp + ox, the last kw - 1 columns of each row thrown away:
//   every tap is then one shift of one contiguous run, out[q] += w[o, tap] * xp[q + offset(tap)].
// - Forward: blocks of OB output channels x 8*SW positions live in vector registers across the taps (one load of the
//   image and OB broadcasts of weights for OB*SW multiply-adds), in tiles of positions x chunks of taps that keep
//   what they read in the L1 cache.
// - Weight gradient: dot products of the cotangent (on the same grid, zero in the thrown-away columns) with shifted
//   images, OB channels x TB taps at a time, summed over positions and images.
// - The input gradient is the forward kernel on the cotangent with the kernel flipped (conv.cpp's transposeAsConv).
#include "conv_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "gemm.h"
#include "parallel.h"
#include "vecmath.h"

namespace gs {

namespace {
#define GS_DIRECT __attribute__((target("avx2,fma")))

// The channel counts up to which the direct kernels beat the column path, and the most bytes of one worker's buffers
// (the padded image and the output grid); larger images take the column path, which tiles. Measured on this VM, one
// thread, interleaved in one process, direct against columns (forward / input gradient / weight gradient, ms):
//   6 -> 16 channels 5x5 at 14x14, batch 64:   0.89 / 0.87 / 1.20  against  1.46 / 2.63 / 1.65
//   16 -> 16 3x3 at 32x32, batch 32:           2.72 / 2.86 / 2.77  against  4.62 / 5.01 / 8.85
//   64 -> 64 3x3 at 32x32, batch 32:           38.5 / 38.6 / 36.6  against  42.5 / 42.2 / 44.5
//   64 -> 64 3x3 at 16x16, batch 32:           7.78 / 7.76 / 9.38  against  8.96 / 9.01 / 9.55
//   64 -> 64 3x3 at 4x4, batch 256:            13.8 / 13.7 / 20.3  against  13.6 / 13.5 / 7.91
//   128 -> 128 3x3 at 16x16, batch 32:         37.0 / 31.2 / 40.0  against  34.9 / 31.1 / 33.2
// The weight gradient sums over one image's positions per block of channels and taps, so with many channels it
// needs enough positions (kMinGradPositions on the output grid) to pay for its blocks' horizontal sums.
constexpr int64_t kMaxChannels = 64, kFewChannels = 16, kMinGradPositions = 512;
constexpr int64_t kMaxBufferBytes = int64_t(16) << 20;
// The forward kernel runs over tiles of kTile positions and chunks of kChunkChannels input channels' taps, so that the
// image rows and weights one tile reads stay in the L1 cache (64 -> 64 channels at 32x32: 30 against 35 ms a batch of
// 32 untiled; tiles of 48-192 and chunks of 8-32 channels within 5% of this).
constexpr int64_t kTile = 96, kChunkChannels = 16;
// Rows of the output grid are padded to a multiple of every block's step (8 * SW for SW = 2, 3, 6; 8 for the weight
// gradient).
constexpr int64_t kQAlign = 48;

struct Grid {
  int64_t H = 0, W = 0, OH = 0, OW = 0, pt = 0, pl = 0;
  int64_t Hp = 0, Wp = 0, plane = 0;
  int64_t Q = 0;      // positions of the output grid (OH * Wp)
  int64_t ldq = 0;    // its row length in the buffers (Q rounded up to kQAlign)
  int64_t taps = 0;   // C * kh * kw
  int64_t xpSize = 0; // floats of the padded image, with room for the reads of the last tap past Q
};

Grid gridOf(const ConvGeom& g) {
  Grid d;
  d.H = g.in[1];
  d.W = g.in[2];
  d.OH = g.out[1];
  d.OW = g.out[2];
  d.pt = g.pb[1];
  d.pl = g.pb[2];
  d.Hp = d.OH + g.k[1] - 1;
  d.Wp = d.OW + g.k[2] - 1;
  d.plane = d.Hp * d.Wp;
  d.Q = d.OH * d.Wp;
  d.ldq = (d.Q + kQAlign - 1) / kQAlign * kQAlign;
  d.taps = g.C * g.k[1] * g.k[2];
  // the last tap starts at C * plane - Q + kw - 1, and a block reads up to ldq past a tap's start
  d.xpSize = g.C * d.plane + d.ldq + 8;
  return d;
}

// Offsets of the taps (c, ky, kx) in the padded image, in the order of w's trailing axes.
std::vector<int64_t> tapOffsets(const ConvGeom& g, const Grid& d) {
  std::vector<int64_t> off;
  off.reserve(size_t(d.taps));
  for (int64_t c = 0; c < g.C; c++)
    for (int64_t ky = 0; ky < g.k[1]; ky++)
      for (int64_t kx = 0; kx < g.k[2]; kx++) off.push_back(c * d.plane + ky * d.Wp + kx);
  return off;
}

// Copies image x (C planes of H x W) into xp's planes at (pt, pl); the padding around it is never written, so it
// stays as zeroed. Rows and columns that no output reads (past Hp, Wp) are left out.
void padImage(const float* x, int64_t C, const Grid& d, float* xp) {
  const int64_t rows = std::min(d.H, d.Hp - d.pt), cols = std::min(d.W, d.Wp - d.pl);
  if (rows <= 0 || cols <= 0) return;
  for (int64_t c = 0; c < C; c++)
    for (int64_t iy = 0; iy < rows; iy++)
      std::memcpy(xp + c * d.plane + (iy + d.pt) * d.Wp + d.pl, x + (c * d.H + iy) * d.W, size_t(cols) * sizeof(float));
}

GS_DIRECT inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// out[o][q] (+)= sum over taps of wp[t][o] * xp[off[t] + q], for OB channels and q in [begin, end) (multiples of
// 8 * SW); `add`: onto what out holds (a later chunk of taps).
template <int OB, int SW>
GS_DIRECT void forwardBlock(const float* xp, const int64_t* off, int64_t taps, const float* wp, float* out,
                            int64_t ldq, int64_t begin, int64_t end, bool add) {
  for (int64_t q = begin; q < end; q += 8 * SW) {
    __m256 acc[OB][SW];
    for (int o = 0; o < OB; o++)
      for (int s = 0; s < SW; s++) acc[o][s] = add ? _mm256_loadu_ps(out + o * ldq + q + 8 * s) : _mm256_setzero_ps();
    const float* wt = wp;
    for (int64_t t = 0; t < taps; t++, wt += OB) {
      const float* src = xp + off[t] + q;
      __m256 xv[SW];
      for (int s = 0; s < SW; s++) xv[s] = _mm256_loadu_ps(src + 8 * s);
      for (int o = 0; o < OB; o++) {
        const __m256 wv = _mm256_broadcast_ss(wt + o);
        for (int s = 0; s < SW; s++) acc[o][s] = _mm256_fmadd_ps(wv, xv[s], acc[o][s]);
      }
    }
    for (int o = 0; o < OB; o++)
      for (int s = 0; s < SW; s++) _mm256_storeu_ps(out + o * ldq + q + 8 * s, acc[o][s]);
  }
}

// gw[o][t] += sum over q < end of gy[o][q] * xp[off[t] + q], for OB channels and TB taps (end a multiple of 8).
template <int OB, int TB>
GS_DIRECT void weightGradBlock(const float* gy, int64_t ldq, int64_t end, const float* xp, const int64_t* off,
                               float* gw, int64_t taps) {
  __m256 acc[OB][TB];
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < TB; t++) acc[o][t] = _mm256_setzero_ps();
  for (int64_t q = 0; q < end; q += 8) {
    __m256 gv[OB];
    for (int o = 0; o < OB; o++) gv[o] = _mm256_loadu_ps(gy + o * ldq + q);
    for (int t = 0; t < TB; t++) {
      const __m256 xv = _mm256_loadu_ps(xp + off[t] + q);
      for (int o = 0; o < OB; o++) acc[o][t] = _mm256_fmadd_ps(gv[o], xv, acc[o][t]);
    }
  }
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < TB; t++) gw[o * taps + t] += hsum(acc[o][t]);
}

// Channel blocks of the forward kernel: OB output channels x 8 * SW positions, OB * SW accumulators and SW loaded
// vectors within the 16 registers.
struct Block {
  int64_t o0, ob;
};
std::vector<Block> channelBlocks(int64_t O) {
  std::vector<Block> blocks;
  for (int64_t o0 = 0; o0 < O;) {
    const int64_t r = O - o0, ob = r >= 6 ? 6 : r;
    blocks.push_back({o0, ob});
    o0 += ob;
  }
  return blocks;
}

int64_t roundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

void runForwardBlock(int64_t ob, const float* xp, const int64_t* off, int64_t taps, const float* wp, float* out,
                     int64_t ldq, int64_t begin, int64_t end, bool add) {
  switch (ob) {
    case 6: return forwardBlock<6, 2>(xp, off, taps, wp, out, ldq, begin, end, add);
    case 5: return forwardBlock<5, 2>(xp, off, taps, wp, out, ldq, begin, end, add);
    case 4: return forwardBlock<4, 3>(xp, off, taps, wp, out, ldq, begin, end, add);
    case 3: return forwardBlock<3, 3>(xp, off, taps, wp, out, ldq, begin, end, add);
    case 2: return forwardBlock<2, 6>(xp, off, taps, wp, out, ldq, begin, end, add);
    default: return forwardBlock<1, 6>(xp, off, taps, wp, out, ldq, begin, end, add);
  }
}

template <int OB>
void runWeightGradTaps(const float* gy, int64_t ldq, int64_t end, const float* xp, const int64_t* off, float* gw,
                       int64_t taps) {
  int64_t t = 0;
  for (; t + 4 <= taps; t += 4) weightGradBlock<OB, 4>(gy, ldq, end, xp, off + t, gw + t, taps);
  switch (taps - t) {
    case 3: return weightGradBlock<OB, 3>(gy, ldq, end, xp, off + t, gw + t, taps);
    case 2: return weightGradBlock<OB, 2>(gy, ldq, end, xp, off + t, gw + t, taps);
    case 1: return weightGradBlock<OB, 1>(gy, ldq, end, xp, off + t, gw + t, taps);
    default: return;
  }
}

std::vector<std::unique_ptr<float[]>> zeroedBuffers(int workers, int64_t floats) {
  std::vector<std::unique_ptr<float[]>> b;
  for (int w = 0; w < workers; w++) b.emplace_back(new float[size_t(floats)]());
  return b;
}
}  // namespace

bool directConvFits(const ConvGeom& g, bool weightGrad) {
  if (!haveAvx2Fma() || g.groups != 1 || g.C > kMaxChannels || g.O > kMaxChannels || g.C < 1 || g.O < 1) return false;
  if (g.in[0] != 1 || g.out[0] != 1 || g.k[0] != 1 || g.pb[0] != 0) return false;
  for (int i = 1; i < 3; i++)
    if (g.s[i] != 1 || g.d[i] != 1) return false;
  if (g.out[1] < 1 || g.out[2] < 1) return false;
  // a 1x1 kernel without padding multiplies the image itself (conv.cpp's pointwise path, faster than this)
  if (g.k[1] * g.k[2] == 1 && g.pb[1] == 0 && g.pb[2] == 0) return false;
  const Grid d = gridOf(g);
  if (weightGrad && (g.C > kFewChannels || g.O > kFewChannels) && d.Q < kMinGradPositions) return false;
  return (d.xpSize + g.O * d.ldq) * int64_t(sizeof(float)) <= kMaxBufferBytes;
}

void directConv(const float* x, const float* w, const float* b, const ConvGeom& g, float* y) {
  const Grid d = gridOf(g);
  const std::vector<int64_t> off = tapOffsets(g, d);
  const std::vector<Block> blocks = channelBlocks(g.O);
  // weights per block, tap-major: wp[o0 * taps + t * ob + o] = w[o0 + o][t]
  std::vector<float> wp(size_t(g.O * d.taps));
  for (const Block& bl : blocks)
    for (int64_t t = 0; t < d.taps; t++)
      for (int64_t o = 0; o < bl.ob; o++) wp[size_t(bl.o0 * d.taps + t * bl.ob + o)] = w[(bl.o0 + o) * d.taps + t];
  const int64_t outSz = d.OH * d.OW;
  const int64_t tapChunk = kChunkChannels * g.k[1] * g.k[2];
  const SplitScope split(double(g.N) * double(g.O) * double(outSz) * double(d.taps), g.N);
  const int workers = split.workers();
  const auto xps = zeroedBuffers(workers, d.xpSize), outs = zeroedBuffers(workers, g.O * d.ldq);
  parallelFor(g.N, workers, [&](int worker, int64_t n) {
    float* xp = xps[size_t(worker)].get();
    float* grid = outs[size_t(worker)].get();
    padImage(x + n * g.C * d.H * d.W, g.C, d, xp);
    // tiles of positions x chunks of taps, so that the image rows and weights a tile reads stay in the L1 cache
    for (int64_t q0 = 0; q0 < d.Q; q0 += kTile) {
      const int64_t q1 = std::min(d.ldq, q0 + kTile);
      for (int64_t t0 = 0; t0 < d.taps; t0 += tapChunk) {
        const int64_t nt = std::min(tapChunk, d.taps - t0);
        for (const Block& bl : blocks)
          runForwardBlock(bl.ob, xp, off.data() + t0, nt, wp.data() + bl.o0 * d.taps + t0 * bl.ob,
                          grid + bl.o0 * d.ldq, d.ldq, q0, q1, t0 > 0);
      }
    }
    for (int64_t o = 0; o < g.O; o++) {
      const float bias = b != nullptr ? b[o] : 0.0f;
      float* yo = y + (n * g.O + o) * outSz;
      const float* src = grid + o * d.ldq;
      for (int64_t oy = 0; oy < d.OH; oy++)
        for (int64_t ox = 0; ox < d.OW; ox++) yo[oy * d.OW + ox] = src[oy * d.Wp + ox] + bias;
    }
  });
}

void directConvWeightGrad(const float* x, const float* gy, const ConvGeom& g, float* gw) {
  const Grid d = gridOf(g);
  const std::vector<int64_t> off = tapOffsets(g, d);
  const int64_t outSz = d.OH * d.OW, size = g.O * d.taps, end = roundUp(d.Q, 8);
  const SplitScope split(double(g.N) * double(g.O) * double(outSz) * double(d.taps), g.N);
  const int workers = split.workers();
  const auto xps = zeroedBuffers(workers, d.xpSize), gys = zeroedBuffers(workers, g.O * d.ldq);
  std::vector<std::vector<float>> partial(size_t(workers - 1), std::vector<float>(size_t(size), 0.0f));
  std::fill(gw, gw + size, 0.0f);
  parallelFor(g.N, workers, [&](int worker, int64_t n) {
    float* xp = xps[size_t(worker)].get();
    float* grid = gys[size_t(worker)].get();
    float* acc = worker == 0 ? gw : partial[size_t(worker - 1)].data();
    padImage(x + n * g.C * d.H * d.W, g.C, d, xp);
    // the cotangent on the output grid: the thrown-away columns stay zero
    for (int64_t o = 0; o < g.O; o++)
      for (int64_t oy = 0; oy < d.OH; oy++)
        std::memcpy(grid + o * d.ldq + oy * d.Wp, gy + ((n * g.O + o) * d.OH + oy) * d.OW, size_t(d.OW) * sizeof(float));
    int64_t o0 = 0;
    for (; o0 + 3 <= g.O; o0 += 3) runWeightGradTaps<3>(grid + o0 * d.ldq, d.ldq, end, xp, off.data(), acc + o0 * d.taps, d.taps);
    if (g.O - o0 == 2) runWeightGradTaps<2>(grid + o0 * d.ldq, d.ldq, end, xp, off.data(), acc + o0 * d.taps, d.taps);
    if (g.O - o0 == 1) runWeightGradTaps<1>(grid + o0 * d.ldq, d.ldq, end, xp, off.data(), acc + o0 * d.taps, d.taps);
  });
  for (const auto& p : partial)
    for (int64_t i = 0; i < size; i++) gw[i] += p[size_t(i)];
}

}  // namespace gs
