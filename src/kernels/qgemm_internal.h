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
// Full blocks are one contiguous run in the packed order, converted in a loop compilers vectorise.
inline void LoadI4Scales(const QWeights& w, int n, float* out) {
  const int groups = w.groups();
  const uint8_t* src = w.scales + Q4ScaleIndex(w.rows, groups, n, 0) * 2;
  if (n + kQPackRows <= w.rows) {
    const int count = groups * kQPackRows;
    for (int i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = F16ToF32(h);
    }
    return;
  }
  for (int g = 0; g < groups; ++g) {
    for (int j = 0; j < kQPackRows; ++j) {
      float s = 0.0f;
      if (n + j < w.rows) {
        uint16_t h;
        std::memcpy(&h, w.scales + Q4ScaleIndex(w.rows, groups, n + j, g) * 2, 2);
        s = F16ToF32(h);
      }
      out[g * kQPackRows + j] = s;
    }
  }
}

// SIMD I4 kernels unpack one row block of weights at a time into a static int8 buffer (in the I8 tile layout,
// values times 16) and walk whole 16-column chunks per group: they take group_size % 32 == 0, at most
// kMaxSimdI4Cols columns and kMaxSimdI4Groups groups, and hand other matrices to the reference.
constexpr int kMaxSimdI4Groups = 256;
constexpr int kMaxSimdI4Cols = 8192;
inline bool SimdI4Supported(const QWeights& w) {
  return w.group_size % kQPackColsI4 == 0 && w.cols <= kMaxSimdI4Cols && w.groups() <= kMaxSimdI4Groups;
}

// Rows of activations processed against one row block of weights while it stays in L1.
constexpr int kQRowBlock = 64;
// Weights are swept in column ranges of about this many bytes, which stay in L2 while every activation row
// block passes over them (wide matrices such as mlp.0 would otherwise stream from L3 once per row block).
constexpr size_t kQWeightChunkBytes = 96 * 1024;

// Output columns per weight range: a multiple of kQPackRows.
inline int WeightChunkCols(const QWeights& w) {
  const size_t blocks = kQWeightChunkBytes / std::max<size_t>(w.block_stride(), 1);
  return static_cast<int>(std::max<size_t>(blocks, 1)) * kQPackRows;
}

}  // namespace qgemm_detail
}  // namespace earshot

namespace earshot {
namespace qgemm_detail {

// Drives a SIMD implementation over the output: row blocks of activations (kept in L2) against one row block of
// weights (kept in L1) at a time. `Tiles` supplies
//   template <int MR> static void I8(const int8_t* q, size_t ldq, const float* xs, const uint8_t* block,
//                                    int chunks, const float* ws, float (*v)[kQPackRows]);
//   template <int MR> static void I4(const int8_t* q, size_t ldq, const float* xs, const int8_t* unpacked,
//                                    int groups, int chunks_per_group, const float* scales, float (*v)[kQPackRows]);
//   static void ConvertScales(const uint8_t* f16, int count, float* out);   // count % 4 == 0, = F16ToF32
//   static void UnpackI4(const uint8_t* block, int chunks, int8_t* out);    // I4 tiles -> I8 tiles, x16
// which write the dequantized values (before the epilogue) of MR rows x kQPackRows columns.
template <class Tiles, int MR>
void RunTilesI8(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int chunks = w.padded_cols / kQPackColsI8;
  const int chunk_cols = WeightChunkCols(w);
  for (int c0 = n0; c0 < n1; c0 += chunk_cols) {
    const int c1 = std::min(n1, c0 + chunk_cols);
    for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
      const int m1 = std::min(M, m0 + kQRowBlock);
      for (int n = c0; n < c1; n += kQPackRows) {
        const uint8_t* block = w.data + static_cast<size_t>(n / kQPackRows) * w.block_stride();
        alignas(16) float ws[kQPackRows];
        LoadI8Scales(w, n, ws);
        const int nr = std::min(kQPackRows, c1 - n);
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
}

template <class Tiles, int MR>
void RunTilesI4(int M, const int8_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int groups = w.groups();
  const int chunks_per_group = w.group_size / kQPackColsI8;
  alignas(16) float scales[kMaxSimdI4Groups * kQPackRows];
  // One row block unpacked at a time, then shared by every activation row of the row block. For single-row
  // products (greedy decoding) the unpacking and per-group scaling still cost about as much as the arithmetic.
  alignas(16) static thread_local int8_t unpacked[kQPackRows * kMaxSimdI4Cols];
  const int chunk_cols = WeightChunkCols(w);
  for (int c0 = n0; c0 < n1; c0 += chunk_cols) {
    const int c1 = std::min(n1, c0 + chunk_cols);
    for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
      const int m1 = std::min(M, m0 + kQRowBlock);
      for (int n = c0; n < c1; n += kQPackRows) {
        const uint8_t* block = w.data + static_cast<size_t>(n / kQPackRows) * w.block_stride();
        if (n + kQPackRows <= w.rows) {
          // A full block's scales are contiguous: converted with SIMD (as F16ToF32 does, bit for bit).
          Tiles::ConvertScales(w.scales + Q4ScaleIndex(w.rows, groups, n, 0) * 2, groups * kQPackRows, scales);
        } else {
          LoadI4Scales(w, n, scales);
        }
        Tiles::UnpackI4(block, w.padded_cols / kQPackColsI4, unpacked);
        const int nr = std::min(kQPackRows, c1 - n);
        int m = m0;
        alignas(16) float v[MR][kQPackRows];
        for (; m + MR <= m1; m += MR) {
          Tiles::template I4<MR>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, unpacked, groups, chunks_per_group,
                                 scales, v);
          StoreTile<MR, kQPackRows>(v, MR, m, n, nr, y, ldy, ep);
        }
        for (; m < m1; ++m) {
          Tiles::template I4<1>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, unpacked, groups, chunks_per_group,
                                scales, v);
          StoreTile<MR, kQPackRows>(v, 1, m, n, nr, y, ldy, ep);
        }
      }
    }
  }
}

}  // namespace qgemm_detail
}  // namespace earshot
