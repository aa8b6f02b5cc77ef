// Float matrix products, the workhorse of the float reference path.
//
// Every output element is a dot product accumulated in a fixed order (kGemmLanes interleaved partial sums
// over k, then a fixed reduction tree), independent of M, N, blocking and tails. So a row computed alone
// equals the same row computed inside a batch bit for bit: beams, prompt chunks and single tokens agree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace earshot {

constexpr int kGemmLanes = 8;

// What happens to each accumulated value before it is stored: y = gelu?(acc + bias) + residual.
// `residual` may alias `y` (same pointer and leading dimension) for in-place residual adds.
struct GemmEpilogue {
  const float* bias = nullptr;  // [N]
  bool gelu = false;            // exact (erf) GELU
  const float* residual = nullptr;
  size_t ld_residual = 0;
};

// y[m, n] = epilogue(sum_k x[m, k] * w[n, k]) for m < M, n < N: x [M, K] @ w[N, K]^T, the PyTorch Linear
// layout. Leading dimensions are in elements. y must not overlap x or w.
void GemmF32(int M, int N, int K, const float* x, size_t ldx, const float* w, size_t ldw, float* y, size_t ldy,
             const GemmEpilogue& epilogue = {});

// Same with half-precision weights, converted tile by tile (never the whole matrix) into a small scratch
// buffer; results are identical to GemmF32 on the converted weights.
void GemmF16(int M, int N, int K, const float* x, size_t ldx, const uint16_t* w, size_t ldw, float* y,
             size_t ldy, const GemmEpilogue& epilogue = {});

// y[m, :] = sum_k p[m, k] * v[k, :], k ascending (attention's probabilities times values).
void MatMulNN(int M, int N, int K, const float* p, size_t ldp, const float* v, size_t ldv, float* y, size_t ldy);

}  // namespace earshot
