// Scaled dot-product attention over several heads, reading heads in place from row-major activations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/aligned_buffer.h"

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
  // Optional: the values transposed, [n_head * d_head, ld_vt], row h * d_head + e holding column e of head h
  // for every key. When given it replaces v, and the probabilities-times-values product runs on the score
  // kernel (faster for many queries; rounding differs from the v path, which sums keys in order).
  const float* v_t = nullptr;
  size_t ld_vt = 0;
  float* out = nullptr;      // [n_q, ldo]; must not overlap q, k or v
  size_t ldo = 0;
  // Integer products (attention_int.cc): QK^T and PV on 16-bit multiply-adds over finely quantized operands,
  // about twice as fast as float. Used for full (non-causal) attention with d_head % 4 == 0; quantized models
  // ask for it in the encoder.
  bool integer_products = false;
  // < 0: every query sees every key. >= 0: query i sees keys j <= causal_offset + i (a chunk of new tokens
  // appended after causal_offset cached ones).
  int causal_offset = -1;
};

// Attention scores: s[i, j] = scale * dot(q row i, k row j) over d elements, as kAttentionScoreLanes partial
// sums (element e into lane e % 4) and then ((l0 + l1) + (l2 + l3)). The order is fixed per element, so a
// score does not depend on the other rows of the call, on blocking or on the build (SSE natively, SIMD128 in
// WebAssembly, AttentionScoreReference in scalar code: all bit-identical).
constexpr int kAttentionScoreLanes = 4;
void AttentionScores(int n_q, int n_k, int d, const float* q, size_t ldq, const float* k, size_t ldk, float scale,
                     float* s, size_t lds);
float AttentionScoreReference(int d, const float* q, const float* k, float scale);

// Floats of scratch one thread of Attention needs for these sizes (queries are processed in blocks, so this
// stays small).
size_t AttentionScratchSize(int n_q, int n_kv);

// softmax(q k^T / sqrt(d_head)) v per head. `scratch` holds scratch_slots * AttentionScratchSize(n_q, n_kv)
// floats; with more than one slot, heads and query blocks are shared among up to that many threads of the pool
// (each (head, query block) is computed the same way whichever thread takes it).
void Attention(const AttentionArgs& args, float* scratch, int scratch_slots = 1);

// The integer path (see attention_int.cc for its arithmetic). Attention takes it when args ask for it and it
// applies; AttentionInteger returns false (computing nothing) when its operand memory cannot be allocated, and
// Attention then uses the float products. AttentionIntegerReference: the same arithmetic in plain loops.
bool IntegerAttentionApplies(const AttentionArgs& args);
bool AttentionInteger(const AttentionArgs& args, int scratch_slots);
void AttentionIntegerReference(const AttentionArgs& args);

// Keys and values quantized once for attentions that reuse them with new queries (the decoder's cross-attention
// over the audio): the integer path's operands of every head, about half the bytes of the floats.
class IntegerKeyValues {
 public:
  // Quantizes k and v [n_kv rows, n_head * d_head columns]. False when d_head is not a multiple of 4 or memory
  // runs out (the object is then empty).
  bool Prepare(int n_kv, int n_head, int d_head, const float* k, size_t ldk, const float* v, size_t ldv);
  int n_kv() const { return n_kv_; }
  int n_head() const { return n_head_; }
  int d_head() const { return d_head_; }
  size_t bytes() const { return data_.size(); }
  // Head h's operands, `head_bytes` per head in attention_int.cc's layout (read-only for attention).
  uint8_t* head_data(int h, size_t head_bytes) const {
    return const_cast<uint8_t*>(data_.data()) + head_bytes * static_cast<size_t>(h);
  }

 private:
  AlignedBuffer data_;
  int n_kv_ = 0, n_head_ = 0, d_head_ = 0;
};

// Integer attention of args' queries over prepared keys and values (args.k and args.v are not read; n_kv, n_head
// and d_head must match, and attention must be non-causal): bit for bit what AttentionInteger computes from the
// keys and values they were prepared from. (head, query block) units are shared among up to scratch_slots
// threads. False when the shapes do not match or memory runs out (nothing is computed).
bool AttentionIntegerPrepared(const AttentionArgs& args, const IntegerKeyValues& kv, int scratch_slots);

}  // namespace earshot
