// Pieces shared by the quantized kernels (reference and SIMD): the float epilogue and scale tables. Kept in one
// place so that every kernel performs the same float operations in the same order.
#pragma once

#include <algorithm>
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

// SIMD I4 kernels keep a row block's f32 scales on the stack and walk whole 32-column chunks per group: they
// take group_size % 32 == 0 and at most this many groups, and hand other matrices to the reference.
constexpr int kMaxSimdI4Groups = 256;
inline bool SimdI4Supported(const QWeights& w) {
  return w.group_size % kQPackColsI4 == 0 && w.groups() <= kMaxSimdI4Groups;
}

// Rows of activations processed against one row block of weights while it stays in L1.
constexpr int kQRowBlock = 64;

}  // namespace qgemm_detail
}  // namespace earshot

namespace earshot {
namespace qgemm_detail {

// Drives a SIMD implementation over the output: row blocks of activations (kept in L2) against one row block of
// weights (kept in L1) at a time. `Tiles` supplies
//   template <int MR> static void I8(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block,
//                                    int chunks, const float* ws, float (*v)[kQPackRows]);
//   template <int MR> static void I4(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block,
//                                    int groups, int chunks_per_group, const float* scales, float (*v)[kQPackRows]);
// which write the dequantized values (before the epilogue) of MR rows x kQPackRows columns.
template <class Tiles, int MR>
void RunTilesI8(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int chunks = w.padded_cols / kQPackColsI8;
  for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
    const int m1 = std::min(M, m0 + kQRowBlock);
    for (int n = n0; n < n1; n += kQPackRows) {
      const uint8_t* block = w.data + static_cast<size_t>(n / kQPackRows) * w.block_stride();
      alignas(16) float ws[kQPackRows];
      LoadI8Scales(w, n, ws);
      const int nr = std::min(kQPackRows, n1 - n);
      int m = m0;
      alignas(16) float v[MR][kQPackRows];
      for (; m + MR <= m1; m += MR) {
        Tiles::template I8<MR>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, block, chunks, ws, v);
        StoreTile<MR, kQPackRows>(v, MR, m, n, nr, y, ldy, ep);
      }
      for (; m < m1; ++m) {
        Tiles::template I8<1>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, block, chunks, ws, v);
        StoreTile<MR, kQPackRows>(v, 1, m, n, nr, y, ldy, ep);
      }
    }
  }
}

template <class Tiles, int MR>
void RunTilesI4(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int groups = w.groups();
  const int chunks_per_group = w.group_size / kQPackColsI4;
  alignas(16) float scales[kMaxSimdI4Groups * kQPackRows];
  for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
    const int m1 = std::min(M, m0 + kQRowBlock);
    for (int n = n0; n < n1; n += kQPackRows) {
      const uint8_t* block = w.data + static_cast<size_t>(n / kQPackRows) * w.block_stride();
      LoadI4Scales(w, n, scales);
      const int nr = std::min(kQPackRows, n1 - n);
      int m = m0;
      alignas(16) float v[MR][kQPackRows];
      for (; m + MR <= m1; m += MR) {
        Tiles::template I4<MR>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, block, groups, chunks_per_group,
                               scales, v);
        StoreTile<MR, kQPackRows>(v, MR, m, n, nr, y, ldy, ep);
      }
      for (; m < m1; ++m) {
        Tiles::template I4<1>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, block, groups, chunks_per_group,
                              scales, v);
        StoreTile<MR, kQPackRows>(v, 1, m, n, nr, y, ldy, ep);
      }
    }
  }
}

}  // namespace qgemm_detail
}  // namespace earshot
