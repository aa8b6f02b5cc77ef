#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace earshot {
namespace {

constexpr int kQueryBlock = 64;  // bounds the score matrix to kQueryBlock x n_kv floats

// One head over queries [q0, q0 + nq).
void AttendBlock(const AttentionArgs& a, int h, int q0, int nq, float scale, float* scores) {
  const size_t col = static_cast<size_t>(h) * a.d_head;
  // The last query of the block sees the most keys; later keys are never needed for this block.
  const int n_keys = a.causal_offset < 0 ? a.n_kv : std::min(a.n_kv, a.causal_offset + q0 + nq);
  GemmF32(nq, n_keys, a.d_head, a.q + static_cast<size_t>(q0) * a.ldq + col, a.ldq, a.k + col, a.ldk, scores,
          static_cast<size_t>(n_keys));
  if (a.causal_offset < 0) {
    // Every query sees every key: one matrix product for the whole block.
    for (int j = 0; j < nq * n_keys; ++j) scores[j] *= scale;
    SoftmaxRows(scores, nq, n_keys, static_cast<size_t>(n_keys));
    MatMulNN(nq, a.d_head, n_keys, scores, static_cast<size_t>(n_keys), a.v + col, a.ldv,
             a.out + static_cast<size_t>(q0) * a.ldo + col, a.ldo);
    return;
  }
  for (int i = 0; i < nq; ++i) {
    float* row = scores + static_cast<size_t>(i) * n_keys;
    const int n_valid = std::min(n_keys, a.causal_offset + q0 + i + 1);
    for (int j = 0; j < n_valid; ++j) row[j] *= scale;
    SoftmaxRows(row, 1, n_valid, static_cast<size_t>(n_valid));
    MatMulNN(1, a.d_head, n_valid, row, static_cast<size_t>(n_valid), a.v + col, a.ldv,
             a.out + static_cast<size_t>(q0 + i) * a.ldo + col, a.ldo);
  }
}

}  // namespace

size_t AttentionScratchSize(int n_q, int n_kv) {
  return static_cast<size_t>(std::min(n_q, kQueryBlock)) * static_cast<size_t>(n_kv);
}

void Attention(const AttentionArgs& a, float* scratch, int scratch_slots) {
  if (a.n_q <= 0 || a.n_head <= 0) return;
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
