// maxPool, maxPoolGather, maxPoolScatter, avgPool, avgPoolBackward, normalize, batchNormTrain/Grad/ScaleGrad
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

gs::Pads padsArg(const Args& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) invalid("pads must be an array of [before, after] pairs");
  Napi::Array arr = info[i].As<Napi::Array>();
  if (arr.Length() > 64) invalid("pads has more than 64 entries");
  gs::Pads pads;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    std::vector<int64_t> p = shapeValue(arr.Get(k), "pads[" + std::to_string(k) + "]");
    if (p.size() != 2) invalid("pads[" + std::to_string(k) + "] must be [before, after]");
    pads.emplace_back(p[0], p[1]);
  }
  return pads;
}

// The window arguments every pooling kernel takes from `at`: kernel, strides, pads, then (max pooling) dilations
// and ceilMode, or (average pooling) ceilMode and countIncludePad.
struct Window {
  gs::PoolGeom geom;
  bool countIncludePad = false;
};

Window windowArgs(const Args& info, size_t at, const gs::Shape& shape, bool max) {
  gs::Shape kernel = intListArg(info, at, "kernel");
  gs::Shape strides = intListArg(info, at + 1, "strides");
  gs::Pads pads = padsArg(info, at + 2);
  Window w;
  gs::Shape dilations(kernel.size(), 1);
  bool ceil = false;
  if (max) {
    dilations = intListArg(info, at + 3, "dilations");
    ceil = boolArg(info, at + 4, "ceilMode");
  } else {
    ceil = boolArg(info, at + 3, "ceilMode");
    w.countIncludePad = boolArg(info, at + 4, "countIncludePad");
  }
  w.geom = gs::planPool(shape, kernel, strides, pads, dilations, ceil);
  return w;
}

void sameFloat(const gs::Arr& a, const gs::Arr& b, const char* an, const char* bn) {
  gs::checkPoolDtype(a.dt);
  if (a.dt != b.dt) invalid(std::string(an) + " and " + bn + " must share a datatype");
}

struct MaxPoolTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  Window w;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    gs::checkPoolDtype(x.dt);
    w = windowArgs(info, 2, shape, true);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(w.geom.outShape), res);
  }
  void run() override { gs::maxPool(x, w.geom, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct MaxPoolGatherTask : Task {
  gs::Arr h, x, out;
  gs::Shape shape;
  Window w;
  Held res;
  void parse(const Args& info) override {
    h = arrayArg(*this, info, 0, "h");
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(h, shape, "h");
    checkLength(x, shape, "x");
    sameFloat(h, x, "h", "x");
    w = windowArgs(info, 3, shape, true);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(w.geom.outShape), res);
  }
  void run() override { gs::maxPoolGather(h, x, w.geom, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&h, &x, &out}; }
};

struct MaxPoolScatterTask : Task {
  gs::Arr g, x, out;
  gs::Shape shape;
  Window w;
  Held res;
  void parse(const Args& info) override {
    g = arrayArg(*this, info, 0, "g");
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(x, shape, "x");
    sameFloat(g, x, "g", "x");
    w = windowArgs(info, 3, shape, true);
    checkLength(g, w.geom.outShape, "g");
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::maxPoolScatter(g, x, w.geom, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&g, &x, &out}; }
};

struct AvgPoolTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  Window w;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    gs::checkPoolDtype(x.dt);
    w = windowArgs(info, 2, shape, false);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(w.geom.outShape), res);
  }
  void run() override { gs::avgPool(x, w.geom, w.countIncludePad, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct AvgPoolBackwardTask : Task {
  gs::Arr g, out;
  gs::Shape shape;
  Window w;
  Held res;
  void parse(const Args& info) override {
    g = arrayArg(*this, info, 0, "g");
    shape = shapeArg(info, 1, "shape");
    gs::checkPoolDtype(g.dt);
    w = windowArgs(info, 2, shape, false);
    checkLength(g, w.geom.outShape, "g");
    out = allocOut(*this, info.Env(), g.dt, gs::numel(shape), res);
  }
  void run() override { gs::avgPoolBackward(g, w.geom, w.countIncludePad, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&g, &out}; }
};

struct NormalizeTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  int64_t axis = 0;
  double epsilon = 0;
  bool center = true;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    axis = intArg(info, 2, "axis");
    epsilon = numberArg(info, 3, "epsilon");
    center = boolArg(info, 4, "center");
    gs::checkNormalize(x.dt, shape, axis, epsilon);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::normalize(x, shape, axis, epsilon, center, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

// batchNormTrain(x, shape, scale, bias, epsilon), batchNormGrad(x, shape, scale, g, epsilon) and
// batchNormScaleGrad(x, shape, g, epsilon): x (N, C, *spatial); scale, bias (C,); g like x.
enum class BnKind { Train, Grad, ScaleGrad };
template <BnKind K> struct BatchNormTask : Task {
  gs::Arr x, a, b, out;
  gs::Shape shape;
  double epsilon = 0;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    const size_t eps = K == BnKind::ScaleGrad ? 3 : 4;
    epsilon = numberArg(info, eps, "epsilon");
    gs::checkBatchNorm(x.dt, shape, epsilon);
    const gs::Shape channels{shape[1]};
    if (K == BnKind::Train) {
      a = arrayArg(*this, info, 2, "scale");
      b = arrayArg(*this, info, 3, "bias");
      checkLength(a, channels, "scale");
      checkLength(b, channels, "bias");
    } else if (K == BnKind::Grad) {
      a = arrayArg(*this, info, 2, "scale");
      b = arrayArg(*this, info, 3, "g");
      checkLength(a, channels, "scale");
      checkLength(b, shape, "g");
    } else {
      b = arrayArg(*this, info, 2, "g");
      checkLength(b, shape, "g");
    }
    if ((K != BnKind::ScaleGrad && a.dt != x.dt) || b.dt != x.dt) gs::invalid("batch norm: every array must have x's datatype");
    out = allocOut(*this, info.Env(), x.dt, K == BnKind::ScaleGrad ? shape[1] : x.n, res);
  }
  void run() override {
    if (K == BnKind::Train) gs::batchNormTrain(x, shape, a, b, epsilon, out);
    else if (K == BnKind::Grad) gs::batchNormGrad(x, shape, a, b, epsilon, out);
    else gs::batchNormScaleGrad(x, shape, b, epsilon, out);
  }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override {
    if (K == BnKind::ScaleGrad) v = {&x, &b, &out};
    else v = {&x, &a, &b, &out};
  }
};
}  // namespace

void registerNn(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<MaxPoolTask>(env, sync, async, "maxPool");
  define<MaxPoolGatherTask>(env, sync, async, "maxPoolGather");
  define<MaxPoolScatterTask>(env, sync, async, "maxPoolScatter");
  define<AvgPoolTask>(env, sync, async, "avgPool");
  define<AvgPoolBackwardTask>(env, sync, async, "avgPoolBackward");
  define<NormalizeTask>(env, sync, async, "normalize");
  define<BatchNormTask<BnKind::Train>>(env, sync, async, "batchNormTrain");
  define<BatchNormTask<BnKind::Grad>>(env, sync, async, "batchNormGrad");
  define<BatchNormTask<BnKind::ScaleGrad>>(env, sync, async, "batchNormScaleGrad");
}

}  // namespace gsb
