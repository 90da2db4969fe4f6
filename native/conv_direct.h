// Direct (register-blocked, no column matrix) FP32 convolution for up to 64 channels, stride 1: LeNet's layers, where
// the column matrix is as large as the work and the products too thin for GEMM, up to ResNet's 64-channel 3x3 blocks
// (native/conv_direct.cpp).
#pragma once
#include "kernels.h"

namespace gs {

// Whether the direct kernels take a convolution of this geometry: FP32 on a CPU with AVX2 and FMA (GRADSERVE_SIMD=off
// turns them off), 1-D or 2-D, one group, stride and dilation 1, up to 64 channels in and out (the limits and their
// measurements in conv_direct.cpp). `weightGrad`: for directConvWeightGrad, which needs larger images past 16 channels.
bool directConvFits(const ConvGeom& g, bool weightGrad = false);
// y = conv(x, w) + b (b may be null), as conv.cpp's convT.
void directConv(const float* x, const float* w, const float* b, const ConvGeom& g, float* y);
// gw = the weight gradient for the cotangent gy of conv(x, w), summed over images, as conv.cpp's convWeightGradT.
void directConvWeightGrad(const float* x, const float* gy, const ConvGeom& g, float* gw);

}  // namespace gs
