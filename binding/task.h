// The baton: a kernel call is a Task. parse() runs on the JS thread: it validates every argument, allocates the
// JS-owned output and fills plain C++ fields (pointers into the input buffers, shapes). run() touches no JS and is
// what the worker thread executes; result() converts back on the JS thread. Sync calls run the same Task inline.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../native/common.h"

namespace gsb {

// The arguments of a kernel call: those of a JS call, or the argument list a program instruction was traced with.
class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : env_(info.Env()) {
    for (size_t i = 0; i < info.Length(); i++) v_.push_back(info[i]);
  }
  Args(Napi::Env env, Napi::Array a) : env_(env) {
    for (uint32_t i = 0; i < a.Length(); i++) v_.push_back(a.Get(i));
  }
  size_t Length() const { return v_.size(); }
  Napi::Value operator[](size_t i) const { return i < v_.size() ? Napi::Value(env_, v_[i]) : env_.Undefined(); }
  Napi::Env Env() const { return env_; }

 private:
  Napi::Env env_;
  std::vector<napi_value> v_;
};

class ProgramBuilder;
using ArrList = std::vector<gs::Arr*>;

struct Task {
  virtual ~Task() = default;
  virtual void parse(const Args& info) = 0;
  virtual void run() = 0;
  virtual Napi::Value result(Napi::Env env) = 0;
  // Every array view the task reads or writes: a program binds the slotted ones to buffers before each run().
  virtual void arrays(ArrList& out) = 0;
  // Adds context (e.g. the failing program step) to the error a failed run() becomes.
  virtual void annotate(Napi::Object err) {}
  // Whether run() starts from LU factorizations (a solve, inv, det): a program with two such steps keeps the ones it
  // computes for the rest of its run (gs::FactorizationScope), one with fewer has nothing to reuse them.
  virtual bool factorsLu() const { return false; }

  // Async tasks keep their input and output objects alive until result(); sync tasks need no references.
  bool async = false;
  std::vector<Napi::ObjectReference> keep;
  // Set while a program is traced: array arguments are slot descriptors or constants, outputs are new slots.
  ProgramBuilder* builder = nullptr;
};

// name -> a new task of that kernel: how a program instruction is made from a traced call.
using TaskFactory = std::function<std::unique_ptr<Task>()>;
void registerFactory(const char* name, TaskFactory f);
const TaskFactory* findFactory(const std::string& name);

// A JS value the task returns: held directly during a sync call, through a reference across an async hop.
class Held {
 public:
  void set(Task& t, Napi::Value v) {
    if (t.async) {
      ref_ = Napi::Persistent(v.As<Napi::Object>());
    } else {
      val_ = v;
    }
  }
  Napi::Value get() const { return ref_.IsEmpty() ? val_ : ref_.Value(); }

 private:
  Napi::Value val_;
  Napi::ObjectReference ref_;
};

Napi::Error makeError(Napi::Env env, const char* code, const std::string& msg);

// A JS exception raised while reading an argument (a throwing getter on an exotic array) is still pending when the
// validation error reaches the boundary; it must win, since no second exception can be thrown over it.
inline bool takePendingException(Napi::Env env, Napi::Value* out) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return false;
  napi_value e;
  napi_get_and_clear_last_exception(env, &e);
  *out = Napi::Value(env, e);
  return true;
}

// Converts any C++ exception into a JS error value with a stable `code` (never lets one escape).
inline Napi::Value errorFor(Napi::Env env, std::exception_ptr ep) {
  Napi::Value pending;
  if (takePendingException(env, &pending)) return pending;
  try {
    std::rethrow_exception(ep);
  } catch (const Napi::Error& e) {
    return e.Value();
  } catch (const gs::KernelError& e) {
    return makeError(env, gs::errCodeName(e.code), e.what()).Value();
  } catch (const std::bad_alloc&) {
    return makeError(env, "INTERNAL", "out of memory").Value();
  } catch (const std::exception& e) {
    return makeError(env, "INTERNAL", e.what()).Value();
  } catch (...) {
    return makeError(env, "INTERNAL", "unknown error").Value();
  }
}

template <typename F> Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (...) {
    Napi::Value err = errorFor(env, std::current_exception());
    napi_throw(env, err);
    return env.Undefined();
  }
}

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Napi::Promise::Deferred d, std::unique_ptr<Task> t)
      : Napi::AsyncWorker(env, "gradserve.kernel"), deferred_(d), task_(std::move(t)) {}

  void Execute() override {
    try {
      task_->run();
    } catch (const gs::KernelError& e) {
      code_ = gs::errCodeName(e.code);
      msg_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "INTERNAL";
      msg_ = "out of memory";
    } catch (const std::exception& e) {
      code_ = "INTERNAL";
      msg_ = e.what();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (code_) {
      Napi::Error err = makeError(env, code_, msg_);
      task_->annotate(err.Value());
      deferred_.Reject(err.Value());
      return;
    }
    try {
      deferred_.Resolve(task_->result(env));
    } catch (...) {
      deferred_.Reject(errorFor(env, std::current_exception()));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<Task> task_;
  const char* code_ = nullptr;
  std::string msg_;
};

template <typename T> Napi::Value callSync(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() {
    T t;
    t.parse(Args(info));
    try {
      t.run();
    } catch (const gs::KernelError& e) {
      Napi::Error err = makeError(info.Env(), gs::errCodeName(e.code), e.what());
      t.annotate(err.Value());
      throw err;
    }
    return t.result(info.Env());
  });
}

template <typename T> Napi::Value callAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  try {
    auto t = std::make_unique<T>();
    t->async = true;
    t->parse(Args(info));
    (new Worker(env, deferred, std::move(t)))->Queue();
  } catch (...) {
    // Argument errors reject like run-time errors do: callers only handle one failure path.
    deferred.Reject(errorFor(env, std::current_exception()));
  }
  return deferred.Promise();
}

template <typename T> void define(Napi::Env env, Napi::Object sync, Napi::Object async, const char* name) {
  sync.Set(name, Napi::Function::New(env, callSync<T>, name));
  async.Set(name, Napi::Function::New(env, callAsync<T>, name));
  registerFactory(name, [] { return std::unique_ptr<Task>(new T()); });
}

}  // namespace gsb
