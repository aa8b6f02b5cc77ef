// Pieces shared by the quantized kernels (reference and SIMD): the float epilogue and scale tables. Kept in one
// place so that every kernel performs the same float operations in the same order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/f16.h"
#include "kernels/ops.h"
#include "kernels/qgemm.h"
#include "kernels/vec4.h"

namespace earshot {
namespace qgemm_detail {

inline float ApplyEpilogue(float v, int m, int n, const GemmEpilogue& ep) {
  if (ep.bias) v += ep.bias[n];
  if (ep.gelu) v = Gelu(v);
  if (ep.residual) v += ep.residual[static_cast<size_t>(m) * ep.ld_residual + n];
  return v;
}

// Stores a tile of dequantized values v[i][j] (rows m.., columns n.. of which `nr` are real). Full tiles
// without GELU add bias and residual four columns at a time (the same two additions per element).
template <int MR, int NR>
inline void StoreTile(const float (&v)[MR][NR], int mr, int m, int n, int nr, float* y, size_t ldy,
                      const GemmEpilogue& ep) {
  if (nr == NR && NR % 4 == 0 && !ep.gelu) {
    for (int i = 0; i < mr; ++i) {
      float* yr = y + static_cast<size_t>(m + i) * ldy + n;
      const float* res = ep.residual ? ep.residual + static_cast<size_t>(m + i) * ep.ld_residual + n : nullptr;
      for (int j = 0; j < NR; j += 4) {
        F32x4 x = LoadF32x4(v[i] + j);
        if (ep.bias) x = x + LoadF32x4(ep.bias + n + j);
        if (res) x = x + LoadF32x4(res + j);
        StoreF32x4(yr + j, x);
      }
    }
    return;
  }
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

// SIMD I4 kernels unpack the row blocks they work on into int8 (the I8 tile layout, values times 16) and walk
// whole groups of pairs: they take group_size % 32 == 0 and at most kMaxSimdI4Groups groups, and hand other
// matrices to the reference.
constexpr int kMaxSimdI4Groups = 256;
inline bool SimdI4Supported(const QWeights& w) {
  return w.group_size % kQPackColsI4 == 0 && w.groups() <= kMaxSimdI4Groups;
}

// Rows of activations processed against one group of weight row blocks while it stays in L1.
constexpr int kQRowBlock = 64;
// Weights are swept in column ranges of about this many bytes, which stay in L2 while every activation row
// block passes over them (wide matrices such as mlp.0 would otherwise stream from L3 once per row block).
constexpr size_t kQWeightChunkBytes = 96 * 1024;

// Output columns per weight range: a multiple of `multiple` (the kernels' column group).
inline int WeightChunkCols(const QWeights& w, int multiple) {
  const size_t blocks = kQWeightChunkBytes / std::max<size_t>(w.block_stride(), 1);
  const int cols = static_cast<int>(std::max<size_t>(blocks, 1)) * kQPackRows;
  return (cols + multiple - 1) / multiple * multiple;
}

// Drives a SIMD implementation over the output: row blocks of activations (kept in L2) against NB row blocks of
// weights (NB * kQPackRows output columns, kept in L1) at a time. `Tiles` supplies
//   template <int MR, int NB> static void I8(const int16_t* q, size_t ldq, const float* xs, const uint8_t* block,
//       size_t block_stride, int pairs, const float* ws, float (*v)[kQPackRows * NB]);
//   template <int MR, int NB> static void I4(const int16_t* q, size_t ldq, const float* xs, const int8_t* unpacked,
//       size_t unpacked_stride, int groups, int pairs_per_group, const float* scales, float (*v)[kQPackRows * NB]);
//   static void ConvertScales(const uint8_t* f16, int count, float* out);   // count % 4 == 0, = F16ToF32
//   static void UnpackI4(const uint8_t* block, int chunks, int8_t* out);    // I4 tiles -> I8 tiles, x16
// where I8/I4 write the dequantized values (before the epilogue) of MR rows x NB * kQPackRows columns; ws holds
// NB * kQPackRows weight scales, `scales` the I4 scales as NB runs of [groups][kQPackRows].
template <int MR, int NB, class Tile>
inline void ForRows(int m0, int m1, int n, int nr, float* y, size_t ldy, const GemmEpilogue& ep, Tile tile) {
  alignas(16) float v[MR][kQPackRows * NB];
  int m = m0;
  for (; m + MR <= m1; m += MR) {
    tile(std::integral_constant<int, MR>(), m, v);
    StoreTile<MR, kQPackRows * NB>(v, MR, m, n, nr, y, ldy, ep);
  }
  for (; m < m1; ++m) {
    tile(std::integral_constant<int, 1>(), m, v);
    StoreTile<MR, kQPackRows * NB>(v, 1, m, n, nr, y, ldy, ep);
  }
}

template <class Tiles, int MR, int NB>
void RunTilesI8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int pairs = w.padded_cols / 2;
  const size_t stride = w.block_stride();
  const int chunk_cols = WeightChunkCols(w, kQPackRows * NB);
  for (int c0 = n0; c0 < n1; c0 += chunk_cols) {
    const int c1 = std::min(n1, c0 + chunk_cols);
    for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
      const int m1 = std::min(M, m0 + kQRowBlock);
      for (int n = c0; n < c1; n += kQPackRows * NB) {
        const uint8_t* block = w.data + static_cast<size_t>(n / kQPackRows) * stride;
        alignas(16) float ws[kQPackRows * NB];
        for (int j = 0; j < NB; ++j) LoadI8Scales(w, n + kQPackRows * j, ws + kQPackRows * j);
        const int nr = std::min(kQPackRows * NB, c1 - n);
        if (nr > kQPackRows * (NB - 1)) {
          ForRows<MR, NB>(m0, m1, n, nr, y, ldy, ep, [&](auto mr, int m, float (*v)[kQPackRows * NB]) {
            Tiles::template I8<decltype(mr)::value, NB>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, block, stride,
                                                        pairs, ws, v);
          });
          continue;
        }
        // The last columns of the range: fewer row blocks than NB, one at a time.
        for (int j = 0; kQPackRows * j < nr; ++j) {
          const int nj = n + kQPackRows * j;
          ForRows<MR, 1>(m0, m1, nj, std::min(kQPackRows, c1 - nj), y, ldy, ep,
                         [&](auto mr, int m, float (*v)[kQPackRows]) {
                           Tiles::template I8<decltype(mr)::value, 1>(q + static_cast<size_t>(m) * ldq, ldq, xs + m,
                                                                      block + j * stride, stride, pairs,
                                                                      ws + kQPackRows * j, v);
                         });
        }
      }
    }
  }
}

template <class Tiles, int MR, int NB>
void RunTilesI4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                size_t ldy, const GemmEpilogue& ep) {
  const int groups = w.groups();
  const int pairs_per_group = w.group_size / 2;
  const size_t stride = w.block_stride();
  // Unpacked row blocks: I8 layout, twice the packed bytes.
  const size_t unpacked_stride = 2 * stride;
  alignas(16) float scales[NB * kMaxSimdI4Groups * kQPackRows];
  // NB row blocks are unpacked at a time, then shared by every activation row of the row block. For single-row
  // products (greedy decoding) the unpacking and per-group scaling still cost about as much as the arithmetic.
  static thread_local std::vector<int8_t> unpacked_storage;
  if (unpacked_storage.size() < NB * unpacked_stride) unpacked_storage.resize(NB * unpacked_stride);
  int8_t* unpacked = unpacked_storage.data();
  const int chunk_cols = WeightChunkCols(w, kQPackRows * NB);
  for (int c0 = n0; c0 < n1; c0 += chunk_cols) {
    const int c1 = std::min(n1, c0 + chunk_cols);
    for (int m0 = 0; m0 < M; m0 += kQRowBlock) {
      const int m1 = std::min(M, m0 + kQRowBlock);
      for (int n = c0; n < c1; n += kQPackRows * NB) {
        const int nr = std::min(kQPackRows * NB, c1 - n);
        const int nb = (nr + kQPackRows - 1) / kQPackRows;
        for (int j = 0; j < nb; ++j) {
          const int nj = n + kQPackRows * j;
          float* block_scales = scales + static_cast<size_t>(j) * groups * kQPackRows;
          if (nj + kQPackRows <= w.rows) {
            // A full block's scales are contiguous: converted with SIMD (as F16ToF32 does, bit for bit).
            Tiles::ConvertScales(w.scales + Q4ScaleIndex(w.rows, groups, nj, 0) * 2, groups * kQPackRows,
                                 block_scales);
          } else {
            LoadI4Scales(w, nj, block_scales);
          }
          Tiles::UnpackI4(w.data + static_cast<size_t>(nj / kQPackRows) * stride, w.padded_cols / kQPackColsI4,
                          unpacked + j * unpacked_stride);
        }
        if (nb == NB) {
          ForRows<MR, NB>(m0, m1, n, nr, y, ldy, ep, [&](auto mr, int m, float (*v)[kQPackRows * NB]) {
            Tiles::template I4<decltype(mr)::value, NB>(q + static_cast<size_t>(m) * ldq, ldq, xs + m, unpacked,
                                                        unpacked_stride, groups, pairs_per_group, scales, v);
          });
          continue;
        }
        for (int j = 0; j < nb; ++j) {
          const int nj = n + kQPackRows * j;
          ForRows<MR, 1>(m0, m1, nj, std::min(kQPackRows, c1 - nj), y, ldy, ep,
                         [&](auto mr, int m, float (*v)[kQPackRows]) {
                           Tiles::template I4<decltype(mr)::value, 1>(
                               q + static_cast<size_t>(m) * ldq, ldq, xs + m, unpacked + j * unpacked_stride,
                               unpacked_stride, groups, pairs_per_group,
                               scales + static_cast<size_t>(j) * groups * kQPackRows, v);
                         });
        }
      }
    }
  }
}

// The tile shapes: MR x NB row blocks for products with at least kGemmRows rows (the encoder, batched beams),
// one row against more row blocks otherwise (single-token decoding), where there is no row reuse to exploit.
constexpr int kGemmRows = 4, kGemmBlocks = 2, kGemvBlocks = 4;

template <class Tiles>
void RunI8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  if (M >= kGemmRows) return RunTilesI8<Tiles, kGemmRows, kGemmBlocks>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunTilesI8<Tiles, 1, kGemvBlocks>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

template <class Tiles>
void RunI4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
           size_t ldy, const GemmEpilogue& ep) {
  if (M >= kGemmRows) return RunTilesI4<Tiles, kGemmRows, kGemmBlocks>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
  RunTilesI4<Tiles, 1, kGemvBlocks>(M, q, ldq, xs, w, n0, n1, y, ldy, ep);
}

}  // namespace qgemm_detail
}  // namespace earshot
