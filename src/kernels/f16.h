// IEEE 754 binary16 <-> binary32 conversion. Both directions are exact in the IEEE sense: half -> float is
// lossless, float -> half rounds to nearest, ties to even, with overflow to infinity, gradual underflow and
// NaN kept a (quiet) NaN. Written branch-light so loops over arrays vectorise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace earshot {

namespace f16_detail {
inline float AsFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t AsBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
}  // namespace f16_detail

// Integer selects only (no float compares), so that g++ vectorises loops over it without -ffast-math.
inline float F16ToF32(uint16_t h) {
  using namespace f16_detail;
  const uint32_t magnitude = h & 0x7fffu;
  uint32_t normal = (magnitude << 13) + ((127u - 15u) << 23);                 // re-bias the exponent
  normal += magnitude >= 0x7c00u ? (128u - 16u) << 23 : 0u;                   // Inf/NaN: exponent all ones
  const float subnormal = static_cast<float>(static_cast<int32_t>(magnitude)) * 5.9604644775390625e-8f;  // m * 2^-24, exact
  const uint32_t is_subnormal = 0u - static_cast<uint32_t>(magnitude < 0x400u);
  const uint32_t bits = (AsBits(subnormal) & is_subnormal) | (normal & ~is_subnormal);
  return AsFloat(bits | ((static_cast<uint32_t>(h) & 0x8000u) << 16));
}

inline uint16_t F32ToF16(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint32_t out;
  if (f >= (143u << 23)) {  // >= 65536: overflow, Inf or NaN
    // (Values in [65520, 65536) also become Inf: the rounding carry in the normal path below does it.)
    out = f > (255u << 23) ? 0x7e00u : 0x7c00u;
  } else if (f < (113u << 23)) {  // below the smallest normal half (2^-14): subnormal or zero
    // Adding 0.5 aligns the half's subnormal step with the float's last mantissa bit, so the FPU's own
    // round-to-nearest-even does the rounding.
    const uint32_t magic_bits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float magic, x;
    std::memcpy(&magic, &magic_bits, 4);
    std::memcpy(&x, &f, 4);
    x += magic;
    uint32_t xb;
    std::memcpy(&xb, &x, 4);
    out = xb - magic_bits;
  } else {
    const uint32_t mant_odd = (f >> 13) & 1u;
    f += ((15u - 127u) << 23) + 0xfffu;  // re-bias and add the rounding bias (just under half an ulp)
    f += mant_odd;                        // ties to even
    out = f >> 13;                        // a carry into the exponent rounds up to the next binade / Inf
  }
  return static_cast<uint16_t>(out | (sign >> 16));
}

void F16ToF32Array(const uint16_t* in, float* out, size_t n);
void F32ToF16Array(const float* in, uint16_t* out, size_t n);

}  // namespace earshot
