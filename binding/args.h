// Argument conversion for the kernel tasks. Every helper validates and throws gs::KernelError(INVALID_ARGUMENT)
// with a message naming the argument, so the kernels only ever see well-formed views.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "../native/kernels.h"
#include "task.h"

namespace gsb {

gs::Arr arrayArg(Task& t, const Args& info, size_t i, const char* name);
gs::Shape shapeArg(const Args& info, size_t i, const char* name);
// Integers (may be negative), e.g. axes, perms, starts, steps.
std::vector<int64_t> intListArg(const Args& info, size_t i, const char* name);
int64_t intArg(const Args& info, size_t i, const char* name);
// [[before, after], ...] of non-negative integers.
gs::Pads padsArg(const Args& info, size_t i, const char* name);
double numberArg(const Args& info, size_t i, const char* name);
bool boolArg(const Args& info, size_t i, const char* name);
std::string stringArg(const Args& info, size_t i, const char* name);
bool isNullish(const Args& info, size_t i);

// Converts one JS value (used for nested arrays).
gs::Arr arrayValue(Task& t, Napi::Value v, const std::string& name);
gs::Shape shapeValue(Napi::Value v, const std::string& name);
int64_t intValue(Napi::Value v, const std::string& name);

// Throws unless arr.n == numel(shape).
void checkLength(const gs::Arr& arr, const gs::Shape& shape, const char* name);

// Allocates a JS-owned typed array of n elements (zeroed only when small; every kernel writes all of its output).
gs::Arr allocOut(Task& t, Napi::Env env, gs::DType dt, int64_t n, Held& out);
Napi::Value shapeToJs(Napi::Env env, const gs::Shape& s);
Napi::Value shaped(Napi::Env env, const Held& data, const gs::Shape& s);

}  // namespace gsb
