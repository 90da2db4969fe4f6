// Floating-point tensors as JSON number arrays (native/json_format.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "common.h"

namespace gs {
// Most characters one number takes, comma included ("-1.2345678901234567e-308," is 25; fixed notation at most 26).
constexpr size_t kJsonNumberChars = 27;
// Bytes `jsonNumbers` may write for n values.
size_t jsonNumbersBound(int64_t n);
// Writes `[v0,v1,...]` exactly as JSON.stringify writes the same doubles (non-finite values as the strings "NaN",
// "Infinity", "-Infinity"); FP32 or FP64 only. Returns the bytes written (at most jsonNumbersBound(a.n)).
size_t jsonNumbers(const Arr& a, char* out);
}  // namespace gs
