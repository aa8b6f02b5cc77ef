// Scaled dot-product attention over several heads, reading heads in place from row-major activations.
#pragma once

#include <cstddef>

namespace earshot {

struct AttentionArgs {
  int n_q = 0;       // query rows
  int n_kv = 0;      // key/value rows
  int n_head = 0;
  int d_head = 0;
  const float* q = nullptr;  // [n_q, ldq]; head h at columns [h*d_head, (h+1)*d_head)
  size_t ldq = 0;
  const float* k = nullptr;  // [n_kv, ldk]
  size_t ldk = 0;
  const float* v = nullptr;  // [n_kv, ldv]
  size_t ldv = 0;
  float* out = nullptr;      // [n_q, ldo]; must not overlap q, k or v
  size_t ldo = 0;
  // < 0: every query sees every key. >= 0: query i sees keys j <= causal_offset + i (a chunk of new tokens
  // appended after causal_offset cached ones).
  int causal_offset = -1;
};

// Floats of scratch one thread of Attention needs for these sizes (queries are processed in blocks, so this
// stays small).
size_t AttentionScratchSize(int n_q, int n_kv);

// softmax(q k^T / sqrt(d_head)) v per head. `scratch` holds scratch_slots * AttentionScratchSize(n_q, n_kv)
// floats; with more than one slot, heads and query blocks are shared among up to that many threads of the pool
// (each (head, query block) is computed the same way whichever thread takes it).
void Attention(const AttentionArgs& args, float* scratch, int scratch_slots = 1);

}  // namespace earshot
