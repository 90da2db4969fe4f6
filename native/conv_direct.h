// Direct (register-blocked, no column matrix) FP32 convolution for few channels: LeNet-style layers, where the
// column matrix is as large as the work and the products are too thin for GEMM (native/conv_direct.cpp).
#pragma once
#include "kernels.h"

namespace gs {

// Whether the direct kernels take a convolution of this geometry: FP32 on a CPU with AVX2 and FMA (GRADSERVE_SIMD=off
// turns them off), 1-D or 2-D, one group, stride and dilation 1, and few channels (the limits in conv_direct.cpp).
bool directConvFits(const ConvGeom& g);
// y = conv(x, w) + b (b may be null), as conv.cpp's convT.
void directConv(const float* x, const float* w, const float* b, const ConvGeom& g, float* y);
// gw = the weight gradient for the cotangent gy of conv(x, w), summed over images, as conv.cpp's convWeightGradT.
void directConvWeightGrad(const float* x, const float* gy, const ConvGeom& g, float* gw);

}  // namespace gs
