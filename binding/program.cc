#include "program.h"

#include <cstring>
#include <optional>
#include <unordered_map>

#include "../native/linalg_solve.h"
#include "args.h"
#include "pool.h"

namespace gsb {

using gs::invalid;

namespace {
std::vector<int64_t> slotList(Napi::Value v, const char* name) {
  if (!v.IsArray()) invalid(std::string(name) + " must be an array of slot numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t k = 0; k < a.Length(); k++) out.push_back(intValue(a.Get(k), std::string(name) + "[" + std::to_string(k) + "]"));
  return out;
}

std::unordered_map<std::string, TaskFactory>& factories() {
  static auto* m = new std::unordered_map<std::string, TaskFactory>();
  return *m;
}
}  // namespace

void registerFactory(const char* name, TaskFactory f) { factories()[name] = std::move(f); }

const TaskFactory* findFactory(const std::string& name) {
  auto it = factories().find(name);
  return it == factories().end() ? nullptr : &it->second;
}

// ---- building ----

ProgramBuilder::ProgramBuilder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProgramBuilder>(info) {}

void ProgramBuilder::needBuilding(const char* what) const {
  if (finished_) invalid(std::string("program: ") + what + " after finish()");
}

Napi::Value ProgramBuilder::descriptor(Napi::Env env, int32_t slot) {
  Napi::Object d = Napi::Object::New(env);
  d.Set("slot", Napi::Number::New(env, slot));
  d.Set("length", Napi::Number::New(env, double(slots_[slot].n)));
  return d;
}

gs::Arr ProgramBuilder::arrayArg(Napi::Value v, const std::string& name) {
  if (!v.IsObject()) invalid(name + " must be a slot descriptor or a typed array");
  Napi::Value s = v.As<Napi::Object>().Get("slot");
  int64_t slot = intValue(s, name + ".slot");
  if (slot < 0 || size_t(slot) >= slots_.size()) invalid(name + " names slot " + std::to_string(slot) + ", which does not exist");
  const Slot& sl = slots_[size_t(slot)];
  gs::Arr a;
  a.dt = sl.dt;
  a.n = sl.n;
  a.slot = int32_t(slot);
  return a;
}

gs::Arr ProgramBuilder::constant(const gs::Arr& a) {
  const size_t bytes = size_t(a.n) * gs::dtypeSize(a.dt);
  std::unique_ptr<unsigned char[]> copy(new unsigned char[bytes > 0 ? bytes : 1]);
  if (bytes > 0) std::memcpy(copy.get(), a.data, bytes);
  gs::Arr c = a;
  c.data = copy.get();
  c.slot = -1;
  constants_.push_back(std::move(copy));
  return c;
}

gs::Arr ProgramBuilder::newSlot(Napi::Env env, gs::DType dt, int64_t n, Task& t, Held& out) {
  if (n < 0 || n > gs::kMaxElements) invalid("output has too many elements");
  const int32_t slot = int32_t(slots_.size());
  slots_.push_back(Slot{dt, n, size_t(n) * gs::dtypeSize(dt), Kind::Temp});
  out.set(t, descriptor(env, slot));
  gs::Arr a;
  a.dt = dt;
  a.n = n;
  a.slot = slot;
  return a;
}

Napi::Value ProgramBuilder::Input(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    needBuilding("input()");
    Args args(info);
    std::string name = stringArg(args, 0, "dtype");
    gs::DType dt;
    if (!gs::parseDType(name, dt)) invalid("unknown datatype '" + name + "'");
    int64_t n = intArg(args, 1, "n");
    if (n < 0 || n > gs::kMaxElements) invalid("input has an invalid element count");
    const int32_t slot = int32_t(slots_.size());
    slots_.push_back(Slot{dt, n, size_t(n) * gs::dtypeSize(dt), Kind::Input});
    inputSlots_.push_back(slot);
    return descriptor(info.Env(), slot);
  });
}

Napi::Value ProgramBuilder::Step(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    currentNode_ = int32_t(intArg(Args(info), 0, "node"));
    return info.Env().Undefined();
  });
}

Napi::Value ProgramBuilder::Call(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    needBuilding("call()");
    Args args(info);
    std::string name = stringArg(args, 0, "kernel");
    const TaskFactory* f = findFactory(name);
    if (f == nullptr) invalid("unknown kernel '" + name + "'");
    if (!args[1].IsArray()) invalid("call(kernel, args): args must be an array");
    std::unique_ptr<Task> task = (*f)();
    task->builder = this;
    task->parse(Args(info.Env(), args[1].As<Napi::Array>()));
    Napi::Value result = task->result(info.Env());
    task->builder = nullptr;
    ArrList all, slotted;
    task->arrays(all);
    for (gs::Arr* a : all)
      if (a->slot >= 0) slotted.push_back(a);
    bound_.push_back(std::move(slotted));
    if (task->factorsLu()) luSteps_++;
    steps_.push_back(std::move(task));
    node_.push_back(currentNode_);
    return result;
  });
}

Napi::Value ProgramBuilder::Finish(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    needBuilding("finish()");
    Napi::Env env = info.Env();
    std::vector<int64_t> outs = slotList(info[0], "outputs");
    for (int64_t s : outs) {
      if (s < 0 || size_t(s) >= slots_.size()) invalid("finish(): output slot " + std::to_string(s) + " does not exist");
      outputSlots_.push_back(int32_t(s));
      if (slots_[size_t(s)].kind == Kind::Temp) slots_[size_t(s)].kind = Kind::Output;
    }
    std::vector<int64_t> last(slots_.size(), -1);
    for (size_t i = 0; i < bound_.size(); i++)
      for (gs::Arr* a : bound_[i]) last[size_t(a->slot)] = int64_t(i);
    freeAfter_.assign(steps_.size(), {});
    for (size_t s = 0; s < slots_.size(); s++)
      if (slots_[s].kind == Kind::Temp && last[s] >= 0) freeAfter_[size_t(last[s])].push_back(int32_t(s));
    // Static figures for the run statistics and the sync/async choice.
    double work = 0, bytes = 0, live = 0, peak = 0;
    std::vector<bool> seen(slots_.size(), false);
    for (int32_t s : inputSlots_) {
      live += double(slots_[size_t(s)].bytes);
      seen[size_t(s)] = true;
    }
    peak = live;
    for (size_t i = 0; i < bound_.size(); i++) {
      for (gs::Arr* a : bound_[i]) {
        work += double(a->n);
        if (!seen[size_t(a->slot)]) {
          seen[size_t(a->slot)] = true;
          live += double(slots_[size_t(a->slot)].bytes);
          bytes += double(slots_[size_t(a->slot)].bytes);
        }
      }
      if (live > peak) peak = live;
      for (int32_t s : freeAfter_[i]) live -= double(slots_[size_t(s)].bytes);
    }
    finished_ = true;
    Napi::Object r = Napi::Object::New(env);
    r.Set("steps", Napi::Number::New(env, double(steps_.size())));
    r.Set("work", Napi::Number::New(env, work));
    r.Set("bytes", Napi::Number::New(env, bytes));
    r.Set("peakBytes", Napi::Number::New(env, peak));
    return r;
  });
}

// ---- running ----

void ProgramBuilder::execute(std::vector<void*>& ptr, const int32_t* cancel, int32_t& failedStep) {
  BufferPool& pool = BufferPool::instance();
  // steps of this run may reuse each other's factorizations (a solve's VJP, det's gradient); none outlive it. A run
  // with one factoring step (a forward solve) would only pay for copies it never looks up.
  std::optional<gs::FactorizationScope> factorizations;
  if (luSteps_ >= 2) factorizations.emplace();
  size_t i = 0;
  try {
    for (; i < steps_.size(); i++) {
      if (cancel != nullptr && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0)
        gs::fail(gs::ErrCode::Cancelled, "the run was cancelled");
      for (gs::Arr* a : bound_[i]) {
        void*& p = ptr[size_t(a->slot)];
        if (p == nullptr) p = pool.acquire(slots_[size_t(a->slot)].bytes);
        a->data = p;
      }
      steps_[i]->run();
      for (int32_t s : freeAfter_[i]) {
        pool.release(ptr[size_t(s)], slots_[size_t(s)].bytes);
        ptr[size_t(s)] = nullptr;
      }
    }
  } catch (...) {
    failedStep = int32_t(i);
    for (size_t s = 0; s < slots_.size(); s++) {
      if (slots_[s].kind == Kind::Temp && ptr[s] != nullptr) {
        pool.release(ptr[s], slots_[s].bytes);
        ptr[s] = nullptr;
      }
    }
    throw;
  }
}

namespace {

// One run of a program: the leaves are the caller's typed arrays, the outputs fresh JS typed arrays.
struct ProgramRun : Task {
  ProgramBuilder* prog = nullptr;
  std::vector<void*> ptr;
  std::vector<Held> outs;  // per entry of outputSlots (empty Held for an output that is an input)
  const int32_t* cancel = nullptr;
  int32_t failedStep = -1;

  void parse(const Args& info) override {
    Napi::Env env = info.Env();
    const auto& slots = prog->slots();
    ptr.assign(slots.size(), nullptr);
    if (!info[0].IsArray()) invalid("run(inputs, cancel): inputs must be an array");
    Napi::Array in = info[0].As<Napi::Array>();
    const auto& ins = prog->inputSlots();
    if (in.Length() != ins.size())
      invalid("run(): " + std::to_string(ins.size()) + " inputs expected, got " + std::to_string(in.Length()));
    for (uint32_t k = 0; k < in.Length(); k++) {
      std::string name = "inputs[" + std::to_string(k) + "]";
      gs::Arr a = arrayValue(*this, in.Get(k), name);
      const auto& sl = slots[size_t(ins[k])];
      if (a.dt != sl.dt || a.n != sl.n)
        invalid(name + " is " + gs::dtypeName(a.dt) + " with " + std::to_string(a.n) + " elements, the program expects " +
                gs::dtypeName(sl.dt) + " with " + std::to_string(sl.n));
      ptr[size_t(ins[k])] = a.data;
    }
    Napi::Value c = info[1];
    if (!c.IsNull() && !c.IsUndefined()) {
      gs::Arr a = arrayValue(*this, c, "cancel");
      if (a.dt != gs::DType::I32 || a.n < 1) invalid("cancel must be an Int32Array of at least one element");
      cancel = a.as<int32_t>();
    }
    const auto& os = prog->outputSlots();
    outs.resize(os.size());
    // Optional third argument: typed arrays the caller supplies for some outputs (recycled memory), by output index;
    // null/undefined entries are allocated here as usual.
    Napi::Value given = info.Length() > 2 ? info[2] : env.Undefined();
    if (!given.IsNull() && !given.IsUndefined() && !given.IsArray()) invalid("run(): outputs must be an array");
    for (size_t k = 0; k < os.size(); k++) {
      const auto& sl = slots[size_t(os[k])];
      if (sl.kind != ProgramBuilder::Kind::Output) continue;
      if (ptr[size_t(os[k])] != nullptr) continue;  // the same slot listed twice: one array, returned twice
      if (given.IsArray() && k < given.As<Napi::Array>().Length()) {
        Napi::Value v = given.As<Napi::Array>().Get(uint32_t(k));
        if (!v.IsNull() && !v.IsUndefined()) {
          std::string name = "outputs[" + std::to_string(k) + "]";
          gs::Arr a = arrayValue(*this, v, name);
          if (a.dt != sl.dt || a.n != sl.n)
            invalid(name + " is " + gs::dtypeName(a.dt) + " with " + std::to_string(a.n) + " elements, the program writes " +
                    gs::dtypeName(sl.dt) + " with " + std::to_string(sl.n));
          if (a.n > 0) {
            ptr[size_t(os[k])] = a.data;
            outs[k].set(*this, v);
            continue;
          }
        }
      }
      gs::Arr o = allocOut(*this, env, sl.dt, sl.n, outs[k]);
      ptr[size_t(os[k])] = o.data;
      // zero-element outputs have no data pointer: mark them bound so execute() does not take a pool buffer
      if (ptr[size_t(os[k])] == nullptr) ptr[size_t(os[k])] = outputMarker();
    }
  }

  static void* outputMarker() {
    static unsigned char m[64];
    return m;
  }

  void run() override {
    bool expected = false;
    if (!prog->running.compare_exchange_strong(expected, true))
      invalid("this program instance is already running (programs are not re-entrant)");
    struct Clear {
      std::atomic<bool>& f;
      ~Clear() { f.store(false); }
    } clear{prog->running};
    prog->execute(ptr, cancel, failedStep);
  }

  Napi::Value result(Napi::Env env) override {
    const auto& os = prog->outputSlots();
    Napi::Array r = Napi::Array::New(env, os.size());
    for (size_t k = 0; k < os.size(); k++) {
      Napi::Value v = outs[k].get();
      if (v.IsEmpty()) {
        // the first entry that allocated this slot holds its array; inputs come back as null (JS has them)
        v = env.Null();
        for (size_t j = 0; j < k; j++)
          if (os[j] == os[k] && !outs[j].get().IsEmpty()) v = outs[j].get();
      }
      r.Set(uint32_t(k), v);
    }
    return r;
  }

  void arrays(ArrList& v) override { v.clear(); }

  void annotate(Napi::Object err) override {
    err.Set("step", Napi::Number::New(err.Env(), failedStep));
    err.Set("node", Napi::Number::New(err.Env(), prog->nodeOf(failedStep)));
  }
};

}  // namespace

Napi::Value ProgramBuilder::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!finished_) invalid("program: run() before finish()");
    ProgramRun t;
    t.prog = this;
    t.parse(Args(info));
    try {
      t.run();
    } catch (const gs::KernelError& e) {
      Napi::Error err = makeError(env, gs::errCodeName(e.code), e.what());
      t.annotate(err.Value());
      throw err;
    }
    return t.result(env);
  });
}

Napi::Value ProgramBuilder::RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  try {
    if (!finished_) invalid("program: runAsync() before finish()");
    auto t = std::make_unique<ProgramRun>();
    t->async = true;
    t->prog = this;
    t->keep.push_back(Napi::Persistent(Value()));  // the program outlives its run
    t->parse(Args(info));
    (new Worker(env, deferred, std::move(t)))->Queue();
  } catch (...) {
    deferred.Reject(errorFor(env, std::current_exception()));
  }
  return deferred.Promise();
}

Napi::Function ProgramBuilder::Define(Napi::Env env) {
  return DefineClass(env, "Program",
                     {InstanceMethod("input", &ProgramBuilder::Input), InstanceMethod("call", &ProgramBuilder::Call),
                      InstanceMethod("step", &ProgramBuilder::Step), InstanceMethod("finish", &ProgramBuilder::Finish),
                      InstanceMethod("run", &ProgramBuilder::Run), InstanceMethod("runAsync", &ProgramBuilder::RunAsync)});
}

namespace {
Napi::Value PoolStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PoolStats s = BufferPool::instance().stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("liveBytes", Napi::Number::New(env, double(s.liveBytes)));
  o.Set("cachedBytes", Napi::Number::New(env, double(s.cachedBytes)));
  o.Set("capBytes", Napi::Number::New(env, double(s.capBytes)));
  o.Set("hits", Napi::Number::New(env, double(s.hits)));
  o.Set("misses", Napi::Number::New(env, double(s.misses)));
  return o;
}

Napi::Value TrimPoolJs(const Napi::CallbackInfo& info) {
  BufferPool::instance().trim();
  return info.Env().Undefined();
}

Napi::Value SetPoolCapJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    int64_t cap = intArg(Args(info), 0, "bytes");
    if (cap < 0) invalid("bytes must be non-negative");
    BufferPool::instance().setCap(size_t(cap));
    return info.Env().Undefined();
  });
}
}  // namespace

void registerPrograms(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = ProgramBuilder::Define(env);
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));  // lives as long as the module
  (void)ref;
  exports.Set("Program", ctor);
  exports.Set("poolStats", Napi::Function::New(env, PoolStatsJs, "poolStats"));
  exports.Set("trimPool", Napi::Function::New(env, TrimPoolJs, "trimPool"));
  exports.Set("setPoolCap", Napi::Function::New(env, SetPoolCapJs, "setPoolCap"));
}

}  // namespace gsb
