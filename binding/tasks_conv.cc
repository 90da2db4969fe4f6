// conv, convTranspose, convWeightGrad
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {

// strides, pads, dilations, groups from arguments i..i+3.
gs::ConvAttrs convAttrsArg(const Args& info, size_t i) {
  gs::ConvAttrs a;
  a.strides = intListArg(info, i, "strides");
  a.pads = padsArg(info, i + 1, "pads");
  a.dilations = intListArg(info, i + 2, "dilations");
  a.groups = intArg(info, i + 3, "groups");
  return a;
}

// conv(x, xShape, w, wShape, b | null, strides, pads, dilations, groups) and
// convTranspose(x, xShape, w, wShape, b | null, strides, pads, dilations, groups, outputPadding) share one task.
template <bool Transpose> struct ConvTask : Task {
  gs::Arr x, w, b, out;
  bool hasBias = false;
  gs::ConvPlan plan;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    gs::Shape xs = shapeArg(info, 1, "xShape");
    w = arrayArg(*this, info, 2, "w");
    gs::Shape ws = shapeArg(info, 3, "wShape");
    checkLength(x, xs, "x");
    checkLength(w, ws, "w");
    hasBias = !isNullish(info, 4);
    gs::Shape bs;
    if (hasBias) {
      b = arrayArg(*this, info, 4, "b");
      bs = {b.n};
    }
    gs::ConvAttrs a = convAttrsArg(info, 5);
    if (Transpose) {
      a.outputPadding = intListArg(info, 9, "outputPadding");
      plan = gs::planConvTranspose(x.dt, xs, w.dt, ws, hasBias ? &bs : nullptr, b.dt, a);
    } else {
      plan = gs::planConv(x.dt, xs, w.dt, ws, hasBias ? &bs : nullptr, b.dt, a);
    }
    out = allocOut(*this, info.Env(), x.dt, gs::numel(plan.out), res);
  }
  void run() override {
    if (Transpose) gs::convTranspose(x, w, hasBias ? &b : nullptr, plan.g, out);
    else gs::conv(x, w, hasBias ? &b : nullptr, plan.g, out);
  }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, plan.out); }
  void arrays(ArrList& v) override {
    v = {&x, &w, &out};
    if (hasBias) v.push_back(&b);
  }
};

// convWeightGrad(x, xShape, g, gShape, wShape, strides, pads, dilations, groups)
struct ConvWeightGradTask : Task {
  gs::Arr x, g, out;
  gs::ConvPlan plan;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    gs::Shape xs = shapeArg(info, 1, "xShape");
    g = arrayArg(*this, info, 2, "g");
    gs::Shape gs_ = shapeArg(info, 3, "gShape");
    gs::Shape ws = shapeArg(info, 4, "wShape");
    checkLength(x, xs, "x");
    checkLength(g, gs_, "g");
    plan = gs::planConvWeightGrad(x.dt, xs, g.dt, gs_, ws, convAttrsArg(info, 5));
    out = allocOut(*this, info.Env(), x.dt, gs::numel(plan.out), res);
  }
  void run() override { gs::convWeightGrad(x, g, plan.g, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &g, &out}; }
};
}  // namespace

void registerConv(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<ConvTask<false>>(env, sync, async, "conv");
  define<ConvTask<true>>(env, sync, async, "convTranspose");
  define<ConvWeightGradTask>(env, sync, async, "convWeightGrad");
}

}  // namespace gsb
