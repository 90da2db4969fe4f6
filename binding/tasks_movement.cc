// transpose, broadcastTo, slice, sliceBackward, pad, concat
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct TransposeTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  std::vector<int64_t> perm;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    perm = intListArg(info, 2, "perm");
    gs::planTranspose(shape, perm);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::transpose(x, shape, perm, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct BroadcastToTask : Task {
  gs::Arr x, out;
  gs::Shape shape, os;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    os = shapeArg(info, 2, "outShape");
    gs::checkBroadcastTo(shape, os);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(os), res);
  }
  void run() override { gs::broadcastTo(x, shape, os, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

// slice(x, shape, starts, steps, outShape) and sliceBackward(g, outShape, starts, steps, shape) share one task.
template <bool Backward> struct SliceTask : Task {
  gs::Arr x, out;
  gs::Shape shape, starts, steps, os;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, Backward ? "g" : "x");
    gs::Shape first = shapeArg(info, 1, Backward ? "outShape" : "shape");
    starts = intListArg(info, 2, "starts");
    steps = intListArg(info, 3, "steps");
    gs::Shape last = shapeArg(info, 4, Backward ? "shape" : "outShape");
    shape = Backward ? last : first;
    os = Backward ? first : last;
    checkLength(x, first, Backward ? "g" : "x");
    gs::checkSlice(shape, starts, steps, os);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(last), res);
  }
  void run() override {
    if (Backward) gs::sliceBackward(x, os, starts, steps, shape, out);
    else gs::slice(x, shape, starts, steps, os, out);
  }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct PadTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  gs::Pads pads;
  double value = 0;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    pads = padsArg(info, 2, "pads");
    value = numberArg(info, 3, "value");
    gs::Shape os = gs::planPad(shape, pads);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(os), res);
  }
  void run() override { gs::pad(x, shape, pads, value, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct ConcatTask : Task {
  std::vector<gs::Arr> xs;
  std::vector<gs::Shape> shapes;
  int64_t axis = 0;
  gs::Arr out;
  Held res;
  void parse(const Args& info) override {
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray()) invalid("concat needs (xs[], shapes[], axis)");
    Napi::Array a = info[0].As<Napi::Array>(), s = info[1].As<Napi::Array>();
    if (a.Length() != s.Length()) invalid("concat: xs and shapes have different lengths");
    std::vector<gs::DType> dts;
    for (uint32_t i = 0; i < a.Length(); i++) {
      std::string n = "xs[" + std::to_string(i) + "]";
      xs.push_back(arrayValue(*this, a.Get(i), n));
      shapes.push_back(shapeValue(s.Get(i), "shapes[" + std::to_string(i) + "]"));
      checkLength(xs.back(), shapes.back(), n.c_str());
      dts.push_back(xs.back().dt);
    }
    axis = intArg(info, 2, "axis");
    gs::Shape os = gs::planConcat(dts, shapes, axis);
    out = allocOut(*this, info.Env(), dts[0], gs::numel(os), res);
  }
  void run() override { gs::concat(xs, shapes, axis, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override {
    v = {&out};
    for (auto& a : xs) v.push_back(&a);
  }
};
}  // namespace

void registerMovement(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<TransposeTask>(env, sync, async, "transpose");
  define<BroadcastToTask>(env, sync, async, "broadcastTo");
  define<SliceTask<false>>(env, sync, async, "slice");
  define<SliceTask<true>>(env, sync, async, "sliceBackward");
  define<PadTask>(env, sync, async, "pad");
  define<ConcatTask>(env, sync, async, "concat");
}

}  // namespace gsb
