#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/f16.h"

namespace earshot {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Value of a half computed from its fields in double (the definition, not the fast path).
double HalfValue(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

// Round-to-nearest-even by search over all finite halves: slow and obviously right.
uint16_t ReferenceToHalf(float f) {
  if (std::isnan(f)) return 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  // Halfway between the largest half (65504) and the next step (65536) goes to Inf (ties to even).
  if (a >= 65520.0) return sign | 0x7c00;
  // Positive halves are ordered like their bit patterns: find the last one <= a, then pick between it and
  // the next by distance, ties to the even pattern.
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (HalfValue(mid) <= a) lo = mid; else hi = mid - 1;
  }
  uint16_t best = lo;
  if (lo < 0x7bff) {
    const double below = a - HalfValue(lo), above = HalfValue(lo + 1) - a;
    if (above < below || (above == below && (lo & 1))) best = lo + 1;
  }
  return sign | best;
}

TEST(KernelsF16, EveryHalfConvertsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    const double expect = HalfValue(static_cast<uint16_t>(h));
    if (std::isnan(expect)) {
      EXPECT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), expect) << "half 0x" << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
    // Round trip back to half is the identity for every non-NaN half.
    ASSERT_EQ(F32ToF16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(KernelsF16, EdgeCases) {
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65519.99f), 0x7bff);  // just below the tie: stays finite
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);   // the tie goes to even, which is Inf
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
  const uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(F16ToF32(nan)));
  const float min_sub = std::ldexp(1.0f, -24);
  EXPECT_EQ(F32ToF16(min_sub), 0x0001);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);                 // tie to even: 0
  EXPECT_EQ(F32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(F32ToF16(3 * std::ldexp(1.0f, -25)), 0x0002);             // 1.5 ulp: tie to even 2
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14)), 0x0400);                 // smallest normal
  EXPECT_EQ(F32ToF16(std::ldexp(1023.5f, -24)), 0x0400);              // rounds up into the normals
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);          // tie, even is 1.0
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);      // tie, even is up
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

TEST(KernelsF16, RandomFloatsRoundToNearestEven) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> exp_dist(-30, 17);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  for (int i = 0; i < 300; ++i) {
    float f = std::ldexp(mant(rng), exp_dist(rng));
    if (i % 2) f = -f;
    ASSERT_EQ(F32ToF16(f), ReferenceToHalf(f)) << f << " bits " << std::hex << Bits(f);
  }
}

TEST(KernelsF16, ArraysMatchScalar) {
  std::vector<float> in = {0.1f, -2.5f, 65504.0f, 1e-6f, 3.14159f};
  std::vector<uint16_t> h(in.size());
  std::vector<float> back(in.size());
  F32ToF16Array(in.data(), h.data(), in.size());
  F16ToF32Array(h.data(), back.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(h[i], F32ToF16(in[i]));
    EXPECT_EQ(back[i], F16ToF32(h[i]));
    EXPECT_NEAR(back[i], in[i], std::fabs(in[i]) * 1e-3 + 1e-7);
  }
}

}  // namespace
}  // namespace earshot
