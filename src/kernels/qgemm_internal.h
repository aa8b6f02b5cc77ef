// Pieces shared by the quantized kernels (reference and SIMD): the float epilogue and scale tables. Kept in one
// place so that every kernel performs the same float operations in the same order.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/f16.h"
#include "kernels/ops.h"
#include "kernels/qgemm.h"

namespace earshot {
namespace qgemm_detail {

inline float ApplyEpilogue(float v, int m, int n, const GemmEpilogue& ep) {
  if (ep.bias) v += ep.bias[n];
  if (ep.gelu) v = Gelu(v);
  if (ep.residual) v += ep.residual[static_cast<size_t>(m) * ep.ld_residual + n];
  return v;
}

// Stores a tile of dequantized values v[i][j] (rows m.., columns n.. of which `nr` are real).
template <int MR, int NR>
inline void StoreTile(const float (&v)[MR][NR], int mr, int m, int n, int nr, float* y, size_t ldy,
                      const GemmEpilogue& ep) {
  for (int i = 0; i < mr; ++i) {
    float* yr = y + static_cast<size_t>(m + i) * ldy;
    for (int j = 0; j < nr; ++j) yr[n + j] = ApplyEpilogue(v[i][j], m + i, n + j, ep);
  }
}

// I8 weight scales of the row block starting at n (zeros past the last row).
inline void LoadI8Scales(const QWeights& w, int n, float out[kQPackRows]) {
  for (int j = 0; j < kQPackRows; ++j) {
    out[j] = 0.0f;
    if (n + j < w.rows) std::memcpy(&out[j], w.scales + static_cast<size_t>(n + j) * 4, 4);
  }
}

// I4 scales of the row block starting at n as f32, laid out [group][kQPackRows] (zeros past the last row).
inline void LoadI4Scales(const QWeights& w, int n, float* out) {
  const int groups = w.groups();
  for (int g = 0; g < groups; ++g) {
    for (int j = 0; j < kQPackRows; ++j) {
      float s = 0.0f;
      if (n + j < w.rows) {
        uint16_t h;
        std::memcpy(&h, w.scales + (static_cast<size_t>(n + j) * groups + g) * 2, 2);
        s = F16ToF32(h);
      }
      out[g * kQPackRows + j] = s;
    }
  }
}

// Largest number of I4 groups a kernel's stack scale table holds (cols <= kQMaxCols, group_size >= 2).
constexpr int kMaxI4Groups = kQMaxCols / 2;

// Rows of activations processed against one row block of weights while it stays in L1.
constexpr int kQRowBlock = 64;

}  // namespace qgemm_detail
}  // namespace earshot
