// Base64 (RFC 4648, standard alphabet, padded) between byte buffers, for JSON bodies that carry tensors as `b64`:
// the request's strings are decoded from the body bytes and the response's written into the reply, so no large
// JavaScript string is ever built (src/server/bigjson.ts).
#pragma once
#include <cstddef>
#include <cstdint>

namespace gs {
// Characters base64Encode writes for n bytes.
constexpr size_t base64EncodedLength(size_t n) { return (n + 2) / 3 * 4; }
// Writes base64EncodedLength(n) characters, '=' padded.
void base64Encode(const uint8_t* src, size_t n, char* out);
// Decodes n characters that are all of the standard alphabet (no padding, no whitespace; n % 4 != 1) into
// n * 3 / 4 bytes, the same bytes Node's decoder gives (trailing bits ignored). Returns the bytes written, or -1 when
// a character is outside the alphabet or n % 4 == 1, in which case `out` holds garbage and the caller falls back.
int64_t base64DecodeStrict(const char* src, size_t n, uint8_t* out);
}  // namespace gs
