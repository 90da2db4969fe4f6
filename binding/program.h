// Native programs: the execution plan of a graph, compiled once into a list of kernel tasks over numbered buffer
// slots, then run as a whole (one thread-pool task per request; JS never sits between two kernels).
//
// A program is traced from JS: `input(dtype, n)` declares a leaf slot; `call(name, args)` makes the kernel task
// `name` (the same task the per-call kernels use, with the same argument checks) whose array arguments are slot
// descriptors `{slot, length}` (or typed arrays, copied into the program as constants) and whose output is a new
// slot; `finish(outputs)` computes each temporary slot's last use. `run(inputs, cancel)` binds the leaves, allocates
// the outputs as JS typed arrays and the temporaries from the native pool (freed at last use), and checks the cancel
// flag between steps.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../native/common.h"
#include "task.h"

namespace gsb {

class ProgramBuilder : public Napi::ObjectWrap<ProgramBuilder> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ProgramBuilder(const Napi::CallbackInfo& info);

  // Used by args.cc while a call is traced.
  gs::Arr arrayArg(Napi::Value v, const std::string& name);
  // A typed array handed to a traced call (a scalar made by an op's run, say): copied into the program.
  gs::Arr constant(const gs::Arr& a);
  gs::Arr newSlot(Napi::Env env, gs::DType dt, int64_t n, Task& t, Held& out);

  enum class Kind : uint8_t { Input, Temp, Output };
  struct Slot {
    gs::DType dt;
    int64_t n;
    size_t bytes;
    Kind kind;
  };

  // The run itself (worker thread or inline): `ptr` has inputs and outputs bound, temporaries null.
  void execute(std::vector<void*>& ptr, const int32_t* cancel, int32_t& failedStep);

  const std::vector<Slot>& slots() const { return slots_; }
  const std::vector<int32_t>& inputSlots() const { return inputSlots_; }
  const std::vector<int32_t>& outputSlots() const { return outputSlots_; }
  int32_t nodeOf(int32_t step) const { return step >= 0 && size_t(step) < node_.size() ? node_[step] : -1; }
  std::atomic<bool> running{false};

 private:
  Napi::Value Input(const Napi::CallbackInfo& info);
  Napi::Value Call(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunAsync(const Napi::CallbackInfo& info);
  Napi::Value descriptor(Napi::Env env, int32_t slot);
  void needBuilding(const char* what) const;

  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Task>> steps_;
  std::vector<ArrList> bound_;  // per step: its views that refer to slots
  std::vector<int32_t> node_;   // per step: the plan node it belongs to
  std::vector<std::vector<int32_t>> freeAfter_;
  std::vector<std::unique_ptr<unsigned char[]>> constants_;
  std::vector<int32_t> inputSlots_, outputSlots_;
  int32_t currentNode_ = -1;
  int32_t luSteps_ = 0;  // steps that factor matrices (Task::factorsLu)
  bool finished_ = false;
};

void registerPrograms(Napi::Env env, Napi::Object exports);

}  // namespace gsb
