// 4-lane GNU vectors for the float and integer kernels: g++ lowers them to SSE, clang to WebAssembly SIMD128,
// so the native and WebAssembly builds run the same arithmetic. Also the one rounding trick several kernels
// share. Kernels that need a particular instruction (pmaddwd, i32x4.dot_i16x8_s) add it next to their loops.
#pragma once

#include <cstdint>
#include <cstring>

namespace earshot {

typedef float F32x4 __attribute__((vector_size(16)));
typedef int32_t I32x4 __attribute__((vector_size(16)));
typedef int16_t I16x8 __attribute__((vector_size(16)));
typedef int16_t I16x4 __attribute__((vector_size(8)));

inline F32x4 LoadF32x4(const float* p) {
  F32x4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void StoreF32x4(float* p, F32x4 v) { std::memcpy(p, &v, sizeof(v)); }
inline I16x8 LoadI16x8(const int16_t* p) {
  I16x8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline F32x4 SplatF32x4(float x) { return F32x4{x, x, x, x}; }

// Lanes of a where `take` is all ones, of b where it is zero (the mask a vector comparison gives). Written with
// bit operations: g++ does not vectorise float selects without -ffast-math.
inline I32x4 Select(I32x4 take, I32x4 a, I32x4 b) { return (a & take) | (b & ~take); }
inline F32x4 Select(I32x4 take, F32x4 a, F32x4 b) { return (F32x4)Select(take, (I32x4)a, (I32x4)b); }

// Rounding to an integer without a float-to-int conversion (WebAssembly on x64 turns one into a long sequence):
// adding 1.5 * 2^23 rounds x to the nearest integer, ties to even (as std::nearbyint in the default mode), for
// |x| < 2^22, and leaves that integer in the low bits of the sum, so sum - kRoundShift is the rounded value as a
// float and bits(sum) - kRoundShiftBits the same value as an integer.
constexpr float kRoundShift = 12582912.0f;
constexpr int32_t kRoundShiftBits = 0x4B400000;

inline int32_t IntFromRoundShifted(float shifted) {
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return bits - kRoundShiftBits;
}
inline I32x4 IntFromRoundShifted(F32x4 shifted) { return (I32x4)shifted - kRoundShiftBits; }

// round_half_even(clamp(x, -limit, limit)), NaN -> 0; limit < 2^22.
inline int32_t RoundClamped(float x, float limit) {
  x = x > limit ? limit : x;
  x = x < -limit ? -limit : x;
  x = x == x ? x : 0.0f;
  return IntFromRoundShifted(x + kRoundShift);
}
inline I32x4 RoundClamped(F32x4 x, F32x4 limit) {
  x = Select(x > limit, limit, x);
  x = Select(x < -limit, -limit, x);
  x = Select(x == x, x, SplatF32x4(0.0f));
  return IntFromRoundShifted(x + SplatF32x4(kRoundShift));
}

}  // namespace earshot
