#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/vec4.h"

namespace earshot {
namespace {

constexpr int kQueryBlock = 64;  // bounds the score matrix to kQueryBlock x n_kv floats
// Keys are taken in chunks of about this many bytes, which stay in L1 while every query row passes over them.
constexpr int kKeyChunkBytes = 32 * 1024;

inline float SumLanes(F32x4 a) { return (a[0] + a[1]) + (a[2] + a[3]); }

// [SumLanes(a), SumLanes(b), SumLanes(c), SumLanes(d)] with the same additions in the same order.
inline F32x4 SumLanesOfFour(F32x4 a, F32x4 b, F32x4 c, F32x4 d) {
  const F32x4 ab = __builtin_shufflevector(a, b, 0, 4, 2, 6) + __builtin_shufflevector(a, b, 1, 5, 3, 7);
  const F32x4 cd = __builtin_shufflevector(c, d, 0, 4, 2, 6) + __builtin_shufflevector(c, d, 1, 5, 3, 7);
  return __builtin_shufflevector(ab, cd, 0, 1, 4, 5) + __builtin_shufflevector(ab, cd, 2, 3, 6, 7);
}

// QR queries against KR keys. Each score is kAttentionScoreLanes partial sums over the head dimension (lane
// e % 4 takes element e), then a fixed tree: the order AttentionScoreReference spells out. 2 x 4 keeps the
// eight accumulators and the loaded vectors within 16 registers, which V8 and SSE both have.
template <int QR, int KR>
inline void ScoreTile(int d, const float* q, size_t ldq, const float* k, size_t ldk, float scale, float* s,
                      size_t lds) {
  F32x4 acc[QR][KR] = {};
  const int d_full = d / 4 * 4;
  for (int e = 0; e < d_full; e += 4) {
    F32x4 qv[QR];
    for (int i = 0; i < QR; ++i) qv[i] = LoadF32x4(q + i * ldq + e);
    for (int j = 0; j < KR; ++j) {
      const F32x4 kv = LoadF32x4(k + j * ldk + e);
      for (int i = 0; i < QR; ++i) acc[i][j] += qv[i] * kv;
    }
  }
  if (d_full < d) {
    // The last d % 4 elements, zero-padded to a vector: adding 0 * 0 leaves the unused lanes as they are. (A
    // lane index that varies at run time would force the accumulators out of registers for the whole loop.)
    float q_tail[QR][4] = {}, k_tail[KR][4] = {};
    for (int e = d_full; e < d; ++e) {
      for (int i = 0; i < QR; ++i) q_tail[i][e - d_full] = q[i * ldq + e];
      for (int j = 0; j < KR; ++j) k_tail[j][e - d_full] = k[j * ldk + e];
    }
    for (int i = 0; i < QR; ++i)
      for (int j = 0; j < KR; ++j) acc[i][j] += LoadF32x4(q_tail[i]) * LoadF32x4(k_tail[j]);
  }
  const F32x4 scale4 = SplatF32x4(scale);
  for (int i = 0; i < QR; ++i) {
    if constexpr (KR == 4) {
      const F32x4 sums = SumLanesOfFour(acc[i][0], acc[i][1], acc[i][2], acc[i][3]) * scale4;
      std::memcpy(s + i * lds, &sums, sizeof(sums));
    } else {
      for (int j = 0; j < KR; ++j) s[i * lds + j] = SumLanes(acc[i][j]) * scale;
    }
  }
}

template <int QR>
void ScoreRows(int n_k, int d, const float* q, size_t ldq, const float* k, size_t ldk, float scale, float* s,
               size_t lds) {
  const int k_full = n_k / 4 * 4;
  for (int j = 0; j < k_full; j += 4)
    ScoreTile<QR, 4>(d, q, ldq, k + static_cast<size_t>(j) * ldk, ldk, scale, s + j, lds);
  for (int j = k_full; j < n_k; ++j)
    ScoreTile<QR, 1>(d, q, ldq, k + static_cast<size_t>(j) * ldk, ldk, scale, s + j, lds);
}

// out[i, :] = sum over keys j < n of p[i, j] * (head h's values of key j), for `rows` rows.
void WeighValues(const AttentionArgs& a, int h, int rows, int n, const float* p, size_t ldp, float* out) {
  const size_t col = static_cast<size_t>(h) * a.d_head;
  if (a.v_t) {
    AttentionScores(rows, a.d_head, n, p, ldp, a.v_t + col * a.ld_vt, a.ld_vt, 1.0f, out, a.ldo);
  } else {
    MatMulNN(rows, a.d_head, n, p, ldp, a.v + col, a.ldv, out, a.ldo);
  }
}

// One head over queries [q0, q0 + nq).
void AttendBlock(const AttentionArgs& a, int h, int q0, int nq, float scale, float* scores) {
  const size_t col = static_cast<size_t>(h) * a.d_head;
  // The last query of the block sees the most keys; later keys are never needed for this block.
  const int n_keys = a.causal_offset < 0 ? a.n_kv : std::min(a.n_kv, a.causal_offset + q0 + nq);
  // Scores for keys the causal mask hides are computed too (cheaper than ragged rows) and never read.
  AttentionScores(nq, n_keys, a.d_head, a.q + static_cast<size_t>(q0) * a.ldq + col, a.ldq, a.k + col, a.ldk,
                  scale, scores, static_cast<size_t>(n_keys));
  if (a.causal_offset < 0) {
    // Every query sees every key: one matrix product for the whole block.
    SoftmaxRows(scores, nq, n_keys, static_cast<size_t>(n_keys));
    WeighValues(a, h, nq, n_keys, scores, static_cast<size_t>(n_keys), a.out + static_cast<size_t>(q0) * a.ldo + col);
    return;
  }
  for (int i = 0; i < nq; ++i) {
    float* row = scores + static_cast<size_t>(i) * n_keys;
    const int n_valid = std::min(n_keys, a.causal_offset + q0 + i + 1);
    SoftmaxRows(row, 1, n_valid, static_cast<size_t>(n_valid));
    WeighValues(a, h, 1, n_valid, row, static_cast<size_t>(n_valid), a.out + static_cast<size_t>(q0 + i) * a.ldo + col);
  }
}

}  // namespace

static_assert(kAttentionScoreLanes == 4, "the score kernels hold one 4-float vector per score");

float AttentionScoreReference(int d, const float* q, const float* k, float scale) {
  float lanes[kAttentionScoreLanes] = {};
  for (int e = 0; e < d; ++e) lanes[e % kAttentionScoreLanes] += q[e] * k[e];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) * scale;
}

void AttentionScores(int n_q, int n_k, int d, const float* q, size_t ldq, const float* k, size_t ldk, float scale,
                     float* s, size_t lds) {
  const int chunk = std::max(4, kKeyChunkBytes / 4 / std::max(d, 1) / 4 * 4);
  for (int j0 = 0; j0 < n_k; j0 += chunk) {
    const int nk = std::min(chunk, n_k - j0);
    const float* kc = k + static_cast<size_t>(j0) * ldk;
    int i = 0;
    for (; i + 2 <= n_q; i += 2)
      ScoreRows<2>(nk, d, q + static_cast<size_t>(i) * ldq, ldq, kc, ldk, scale, s + i * lds + j0, lds);
    if (i < n_q) ScoreRows<1>(nk, d, q + static_cast<size_t>(i) * ldq, ldq, kc, ldk, scale, s + i * lds + j0, lds);
  }
}

size_t AttentionScratchSize(int n_q, int n_kv) {
  return static_cast<size_t>(std::min(n_q, kQueryBlock)) * static_cast<size_t>(n_kv);
}

void Attention(const AttentionArgs& a, float* scratch, int scratch_slots) {
  if (a.n_q <= 0 || a.n_head <= 0) return;
  if (IntegerAttentionApplies(a) && AttentionInteger(a, scratch_slots)) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.d_head));
  const int n_blocks = (a.n_q + kQueryBlock - 1) / kQueryBlock;
  const int n_units = a.n_head * n_blocks;  // (head, query block), heads outermost as one thread would go
  // Two products of n_q x n_kv x d_head per head.
  const int64_t work = 2 * static_cast<int64_t>(a.n_q) * a.n_kv * a.d_head * a.n_head;
  const int slots = std::min(scratch_slots, TaskCountFor(work, n_units));
  const size_t slot_size = AttentionScratchSize(a.n_q, a.n_kv);
  ParallelForSlots(n_units, slots, [&](int unit, int slot) {
    const int q0 = unit % n_blocks * kQueryBlock;
    AttendBlock(a, unit / n_blocks, q0, std::min(kQueryBlock, a.n_q - q0), scale, scratch + slot * slot_size);
  });
}

}  // namespace earshot
