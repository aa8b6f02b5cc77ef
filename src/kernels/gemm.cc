#include "kernels/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/f16.h"
#include "kernels/ops.h"
#include "kernels/vec4.h"
#include "kernels/product_split.h"

namespace earshot {
namespace {

// Register tile: MR rows of x against NR rows of w, kGemmLanes partial sums each. Plain loops over
// compile-time bounds, which g++ and clang turn into SIMD.
constexpr int kMaxMR = 4;
constexpr int kMaxNR = 4;
// Cache blocking: a block of x rows stays in L2 while tiles of w stream past it.
constexpr int kRowBlock = 64;
constexpr int kColTile = 16;

inline float ReduceLanes(const float* a) {
  static_assert(kGemmLanes == 8, "reduction tree written for 8 lanes");
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

template <int MR, int NR>
inline void DotTile(int K, const float* x, size_t ldx, const float* w, size_t ldw, float out[kMaxMR][kMaxNR]) {
  float acc[MR][NR][kGemmLanes] = {};
  const int k_full = K / kGemmLanes * kGemmLanes;
  for (int k = 0; k < k_full; k += kGemmLanes) {
    for (int i = 0; i < MR; ++i) {
      const float* xr = x + i * ldx + k;
      for (int j = 0; j < NR; ++j) {
        const float* wr = w + j * ldw + k;
        for (int l = 0; l < kGemmLanes; ++l) acc[i][j][l] += xr[l] * wr[l];
      }
    }
  }
  for (int k = k_full; k < K; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j][k - k_full] += x[i * ldx + k] * w[j * ldw + k];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i][j] = ReduceLanes(acc[i][j]);
}

using DotTileFn = void (*)(int, const float*, size_t, const float*, size_t, float[kMaxMR][kMaxNR]);

template <int MR>
constexpr DotTileFn PickNR(int nr) {
  return nr == 4 ? DotTile<MR, 4> : nr == 3 ? DotTile<MR, 3> : nr == 2 ? DotTile<MR, 2> : DotTile<MR, 1>;
}

DotTileFn PickTile(int mr, int nr) {
  switch (mr) {
    case 4: return PickNR<4>(nr);
    case 3: return PickNR<3>(nr);
    case 2: return PickNR<2>(nr);
    default: return PickNR<1>(nr);
  }
}

inline float ApplyEpilogue(float v, int m, int n, const GemmEpilogue& ep) {
  if (ep.bias) v += ep.bias[n];
  if (ep.gelu) v = Gelu(v);
  if (ep.residual) v += ep.residual[static_cast<size_t>(m) * ep.ld_residual + n];
  return v;
}

// Computes rows [m0, m1) x cols [n0, n1) with w pointing at row n0 of an f32 weight tile.
void ComputeBlock(int m0, int m1, int n0, int n1, int K, const float* x, size_t ldx, const float* w_tile,
                  size_t ldw, float* y, size_t ldy, const GemmEpilogue& ep) {
  float out[kMaxMR][kMaxNR];
  for (int m = m0; m < m1; m += kMaxMR) {
    const int mr = std::min(kMaxMR, m1 - m);
    for (int n = n0; n < n1; n += kMaxNR) {
      const int nr = std::min(kMaxNR, n1 - n);
      PickTile(mr, nr)(K, x + static_cast<size_t>(m) * ldx, ldx, w_tile + static_cast<size_t>(n - n0) * ldw, ldw,
                       out);
      for (int i = 0; i < mr; ++i) {
        float* yr = y + static_cast<size_t>(m + i) * ldy;
        for (int j = 0; j < nr; ++j) yr[n + j] = ApplyEpilogue(out[i][j], m + i, n + j, ep);
      }
    }
  }
}

// Rows [m_begin, m_end) x columns [n_begin, n_end) of GemmF32 (n_begin a multiple of kColTile).
void GemmF32Range(int m_begin, int m_end, int n_begin, int n_end, int K, const float* x, size_t ldx, const float* w,
                  size_t ldw, float* y, size_t ldy, const GemmEpilogue& ep) {
  for (int m0 = m_begin; m0 < m_end; m0 += kRowBlock) {
    const int m1 = std::min(m_end, m0 + kRowBlock);
    for (int n0 = n_begin; n0 < n_end; n0 += kColTile) {
      const int n1 = std::min(n_end, n0 + kColTile);
      ComputeBlock(m0, m1, n0, n1, K, x, ldx, w + static_cast<size_t>(n0) * ldw, ldw, y, ldy, ep);
    }
  }
}

// The same with f16 weights: each tile of kColTile weight rows is converted once and used for every row of
// x. The conversion costs about as much as a few rows of arithmetic, while streaming x past each tile again is
// cheap (it stays in L2/L3).
void GemmF16Range(int m_begin, int m_end, int n_begin, int n_end, int K, const float* x, size_t ldx,
                  const uint16_t* w, size_t ldw, float* y, size_t ldy, const GemmEpilogue& ep) {
  // One converted tile per thread; grows to the largest K seen and is then reused.
  thread_local std::vector<float> tile;
  if (tile.size() < static_cast<size_t>(kColTile) * K) tile.resize(static_cast<size_t>(kColTile) * K);
  for (int n0 = n_begin; n0 < n_end; n0 += kColTile) {
    const int n1 = std::min(n_end, n0 + kColTile);
    for (int n = n0; n < n1; ++n)
      F16ToF32Array(w + static_cast<size_t>(n) * ldw, tile.data() + static_cast<size_t>(n - n0) * K, K);
    ComputeBlock(m_begin, m_end, n0, n1, K, x, ldx, tile.data(), K, y, ldy, ep);
  }
}

// Runs range(m0, m1, n0, n1) over a split of the M x N output among the pool's threads.
template <class RangeFn>
void SplitGemm(int M, int N, int K, const RangeFn& range) {
  if (M <= 0 || N <= 0) return;
  const ProductSplit split(M, N, K, kRowBlock, kColTile);
  if (split.tasks() == 1) return range(0, M, 0, N);
  ParallelFor(split.tasks(), [&](int t) {
    int m0, m1, n0, n1;
    split.Range(t, &m0, &m1, &n0, &n1);
    range(m0, m1, n0, n1);
  });
}

}  // namespace

void GemmF32(int M, int N, int K, const float* x, size_t ldx, const float* w, size_t ldw, float* y, size_t ldy,
             const GemmEpilogue& ep) {
  SplitGemm(M, N, K, [&](int m0, int m1, int n0, int n1) {
    GemmF32Range(m0, m1, n0, n1, K, x, ldx, w, ldw, y, ldy, ep);
  });
}

void GemmF16(int M, int N, int K, const float* x, size_t ldx, const uint16_t* w, size_t ldw, float* y,
             size_t ldy, const GemmEpilogue& ep) {
  SplitGemm(M, N, K, [&](int m0, int m1, int n0, int n1) {
    GemmF16Range(m0, m1, n0, n1, K, x, ldx, w, ldw, y, ldy, ep);
  });
}

namespace {

// MR rows of y, NR columns, accumulated over all k in registers (k ascending, as the plain loop would).
// Written with 4-float vectors (vec4.h): left to itself g++ vectorises the k loop as an in-order reduction
// here, which is several times slower.

template <int MR, int NR>
inline void MatMulNNTile(int K, const float* p, size_t ldp, const float* v, size_t ldv, float* y, size_t ldy) {
  static_assert(NR % 4 == 0, "NR must be a multiple of 4");
  constexpr int kVec = NR / 4;
  F32x4 acc[MR][kVec] = {};
  for (int k = 0; k < K; ++k) {
    const float* vr = v + static_cast<size_t>(k) * ldv;
    F32x4 vk[kVec];
    for (int j = 0; j < kVec; ++j) vk[j] = LoadF32x4(vr + 4 * j);
    for (int i = 0; i < MR; ++i) {
      const float pk = p[i * ldp + k];
      const F32x4 b = SplatF32x4(pk);
      for (int j = 0; j < kVec; ++j) acc[i][j] += b * vk[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < kVec; ++j) StoreF32x4(y + i * ldy + 4 * j, acc[i][j]);
}

// One column, any rows: the tail of MatMulNN.
inline void MatMulNNColumn(int rows, int K, const float* p, size_t ldp, const float* v, size_t ldv, float* y,
                           size_t ldy) {
  for (int i = 0; i < rows; ++i) {
    float acc = 0;
    for (int k = 0; k < K; ++k) acc += p[i * ldp + k] * v[static_cast<size_t>(k) * ldv];
    y[i * ldy] = acc;
  }
}

}  // namespace

void MatMulNN(int M, int N, int K, const float* p, size_t ldp, const float* v, size_t ldv, float* y, size_t ldy) {
  constexpr int kNR = 8;
  const int n_full = N / kNR * kNR, n_quad = N / 4 * 4;
  int m = 0;
  for (; m < M; m += 4) {
    const int mr = std::min(4, M - m);
    const float* pr = p + static_cast<size_t>(m) * ldp;
    float* yr = y + static_cast<size_t>(m) * ldy;
    for (int n = 0; n < n_full; n += kNR) {
      if (mr == 4) MatMulNNTile<4, kNR>(K, pr, ldp, v + n, ldv, yr + n, ldy);
      else if (mr == 3) MatMulNNTile<3, kNR>(K, pr, ldp, v + n, ldv, yr + n, ldy);
      else if (mr == 2) MatMulNNTile<2, kNR>(K, pr, ldp, v + n, ldv, yr + n, ldy);
      else MatMulNNTile<1, kNR>(K, pr, ldp, v + n, ldv, yr + n, ldy);
    }
    if (n_quad > n_full) {
      if (mr == 4) MatMulNNTile<4, 4>(K, pr, ldp, v + n_full, ldv, yr + n_full, ldy);
      else if (mr == 3) MatMulNNTile<3, 4>(K, pr, ldp, v + n_full, ldv, yr + n_full, ldy);
      else if (mr == 2) MatMulNNTile<2, 4>(K, pr, ldp, v + n_full, ldv, yr + n_full, ldy);
      else MatMulNNTile<1, 4>(K, pr, ldp, v + n_full, ldv, yr + n_full, ldy);
    }
    for (int n = n_quad; n < N; ++n) MatMulNNColumn(mr, K, pr, ldp, v + n, ldv, yr + n, ldy);
  }
}

}  // namespace earshot
