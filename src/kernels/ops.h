// Element-wise and row-wise float kernels: activation, normalisation, softmax, conv1d lowering.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/vec4.h"

namespace earshot {

// exp(x) for float, within a few ulp of the correctly rounded result over the whole float range (0 far
// below -87, +Inf above 88.72, NaN stays NaN). Branch-free so that softmax loops vectorise; libm's expf
// does not.
namespace ops_detail {
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
}  // namespace ops_detail

inline float FastExp(float x) {
  using namespace ops_detail;
  // Clamp to [-104, 88.8] with integer compares on the bit pattern (g++ does not vectorise float selects
  // without -ffast-math). Negative floats, -Inf and negative NaNs compare above -104's pattern as unsigned;
  // positive ones above 88.8's pattern as signed. A NaN input is passed through at the end.
  const uint32_t x_bits = AsBits(x);
  uint32_t c_bits = x_bits > 0xC2D00000u ? 0xC2D00000u : x_bits;                           // -104.0f
  c_bits = static_cast<int32_t>(c_bits) > static_cast<int32_t>(0x42B1999Au) ? 0x42B1999Au : c_bits;  // 88.8f
  const float c = AsFloat(c_bits);
  // exp(x) = 2^n * exp(r), x = n ln2 + r, |r| <= ln2/2, n rounded through kRoundShift (vec4.h); ln2 is split in
  // two so that n * 0.693359375 is exact and the reduction loses nothing.
  const float shifted = c * 1.44269504088896341f + kRoundShift;
  const float n = shifted - kRoundShift;
  float r = c - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  // Minimax polynomial for exp(r) on [-ln2/2, ln2/2] (Cephes expf coefficients).
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // Scale by 2^n in two steps so that results in the subnormal range and near overflow come out right.
  const int32_t ni = IntFromRoundShifted(shifted);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float result = p * AsFloat(static_cast<uint32_t>(n1 + 127) << 23) * AsFloat(static_cast<uint32_t>(n2 + 127) << 23);
  const uint32_t is_nan = (x_bits & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : 0u;
  return AsFloat((AsBits(result) & ~is_nan) | (x_bits & is_nan));
}

// Exact GELU, x * Phi(x) = 0.5 x erfc(-x / sqrt 2), as in Whisper (not the tanh approximation). erfc uses
// the Chebyshev fit of Numerical Recipes (erfcc, fractional error < 1.2e-7) with FastExp, branch-free so that
// loops over it vectorise. Within 4e-7 absolute (2e-6 relative for |x| <= 4) of the exact value; the erfc
// form also avoids the cancellation 1 + erf(x) suffers for negative x.
inline float Gelu(float x) {
  using namespace ops_detail;
  const float u = x * -0.70710678118654752440f;
  const uint32_t u_bits = AsBits(u);
  const float z = AsFloat(u_bits & 0x7fffffffu);
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float erfc_abs = t * FastExp(p - z * z);  // erfc(|u|)
  // erfc(u) = 2 - erfc(-u) for negative u: select on the sign bit.
  const uint32_t negative = static_cast<uint32_t>(static_cast<int32_t>(u_bits) >> 31);
  const float erfc = AsFloat((AsBits(erfc_abs) & ~negative) | (AsBits(2.0f - erfc_abs) & negative));
  return 0.5f * x * erfc;
}

// x[i] = Gelu(x[i]) for i < n, bit-identical to Gelu one value at a time, in a loop compilers vectorise
// (a GEMM epilogue applies Gelu a few values at a time, in scalar code).
void GeluInPlace(float* x, size_t n);

// LayerNorm over each of `rows` rows of `dim` values (eps as given, PyTorch's biased variance).
// out may equal in. gamma/beta are [dim].
void LayerNorm(const float* in, float* out, int rows, int dim, const float* gamma, const float* beta,
               float eps = 1e-5f);

// In-place softmax over each row of n values. -Inf entries get probability 0; a row of all -Inf becomes 0s.
void SoftmaxRows(float* x, int rows, int n, size_t ld);

// In-place log_softmax of one row. A row of all -Inf stays all -Inf.
void LogSoftmax(float* x, int n);

// Lowers conv1d (kernel 3, padding 1, given stride) to a matrix product: cols[t, c*3 + k] =
// in(c, t*stride + k - 1), zero outside [0, n_in). The input element (c, t) is read from
// in[c * stride_c + t * stride_t], so channel-major and time-major inputs both work. Output rows
// t < n_out = (n_in - 1) / stride + 1. With this layout, cols @ W^T for W [out, in, 3] is the convolution.
void Im2ColK3(const float* in, int channels, int n_in, size_t stride_c, size_t stride_t, int stride, float* cols);
inline int Conv1dK3OutputLength(int n_in, int stride) { return (n_in - 1) / stride + 1; }

}  // namespace earshot
