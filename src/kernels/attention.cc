#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace earshot {
namespace {
constexpr int kQueryBlock = 64;  // bounds the score matrix to kQueryBlock x n_kv floats
}

size_t AttentionScratchSize(int n_q, int n_kv) {
  return static_cast<size_t>(std::min(n_q, kQueryBlock)) * static_cast<size_t>(n_kv);
}

void Attention(const AttentionArgs& a, float* scores) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(a.d_head));
  for (int h = 0; h < a.n_head; ++h) {
    const size_t col = static_cast<size_t>(h) * a.d_head;
    for (int q0 = 0; q0 < a.n_q; q0 += kQueryBlock) {
      const int nq = std::min(kQueryBlock, a.n_q - q0);
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
        continue;
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
  }
}

}  // namespace earshot
