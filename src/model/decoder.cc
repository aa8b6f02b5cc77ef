#include "model/decoder.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/ops.h"

namespace earshot {
namespace {

Status Project(const float* in, int n, int d, const LinearWeights& w, float* out, const GemmEpilogue& extra = {}) {
  GemmEpilogue ep = extra;
  ep.bias = w.bias_or_null();
  return Linear(in, n, static_cast<size_t>(d), *w.weight, out, static_cast<size_t>(w.weight->shape[0]), ep);
}

// Threads whose attention score blocks of `slot_size` floats fit in `scores` (the thread count may have
// changed since it was reserved).
int SlotsIn(const FloatBuffer& scores, size_t slot_size) {
  const size_t fit = slot_size ? scores.capacity() / slot_size : 1;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(fit, static_cast<size_t>(ThreadCount()))));
}

}  // namespace

Expected<DecoderSession> DecoderSession::Start(std::shared_ptr<const WhisperWeights> weights,
                                               const float* encoder_out, int n_audio, int max_rows,
                                               int max_positions) {
  if (!weights) return Status::Error("no model weights");
  const HyperParams& hp = weights->hparams();
  if (n_audio < 1 || n_audio > hp.n_audio_ctx)
    return Status::Error("encoder output has " + std::to_string(n_audio) + " positions; the model allows 1.." +
                         std::to_string(hp.n_audio_ctx));
  if (max_rows < 1 || max_rows > 1024) return Status::Error("decoder rows must be in 1..1024");
  if (max_positions < 1 || max_positions > hp.n_text_ctx)
    return Status::Error("decoder length must be in 1.." + std::to_string(hp.n_text_ctx));
  DecoderSession s;
  s.weights_ = weights;
  s.n_audio_ = n_audio;
  s.d_ = hp.n_text_state;
  // One buffer per matrix rather than one for all: blocks this size fit in the space the encoder's
  // activations left free, where a single block of every layer's keys and values would not.
  const size_t per_matrix = static_cast<size_t>(n_audio) * s.d_;
  s.cross_kv_.resize(static_cast<size_t>(2) * hp.n_text_layer);
  s.cross_int_.resize(static_cast<size_t>(hp.n_text_layer));
  const int d_head = s.d_ / hp.n_text_head;
  FloatBuffer k_float, v_float;  // integer layers: projected here, kept quantized
  for (int l = 0; l < hp.n_text_layer; ++l) {
    const AttentionWeights& a = weights->decoder_blocks[l].cross_attn;
    // Quantized models run attention on integer products, as in the encoder.
    const bool integer = (a.query.weight->dtype == DType::I8 || a.query.weight->dtype == DType::I4) &&
                         d_head % 4 == 0;
    FloatBuffer& k = integer ? k_float : s.cross_kv_[2 * l];
    FloatBuffer& v = integer ? v_float : s.cross_kv_[2 * l + 1];
    EARSHOT_RETURN_IF_ERROR(k.Reserve(per_matrix, "the cross-attention keys"));
    EARSHOT_RETURN_IF_ERROR(Project(encoder_out, n_audio, s.d_, a.key, k.data()));
    EARSHOT_RETURN_IF_ERROR(v.Reserve(per_matrix, "the cross-attention values"));
    EARSHOT_RETURN_IF_ERROR(Project(encoder_out, n_audio, s.d_, a.value, v.data()));
    if (integer && !s.cross_int_[l].Prepare(n_audio, hp.n_text_head, d_head, k.data(), s.d_, v.data(), s.d_))
      return Status::Error("out of memory for the cross-attention keys and values");
  }
  // The self-attention cache grows with the decoded length (Forward).
  EARSHOT_RETURN_IF_ERROR(s.cache_.Allocate(hp.n_text_layer, max_rows, max_positions, s.d_));
  return s;
}

void DecoderSession::Reset() {
  cache_.Clear();
  rows_ = 0;
}

Status DecoderSession::ReorderRows(const std::vector<int>& source_rows) {
  if (source_rows.empty()) return Status::Error("beam reorder: no rows");
  for (int src : source_rows)
    if (src < 0 || src >= rows_) return Status::Error("beam reorder: source row out of range");
  EARSHOT_RETURN_IF_ERROR(cache_.Reorder(source_rows));
  rows_ = static_cast<int>(source_rows.size());
  return Status::Ok();
}

Status DecoderSession::ReserveScratch(int n, int n_keys_max) {
  const size_t nd = static_cast<size_t>(n) * d_;
  EARSHOT_RETURN_IF_ERROR(x_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(h_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(q_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(k_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(v_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(attn_.Reserve(nd, "decoder activations"));
  EARSHOT_RETURN_IF_ERROR(mlp_.Reserve(nd * 4, "decoder activations"));
  // One block of attention scores per thread. AttentionScratchSize(n, keys) also covers the per-row blocks of
  // self-attention (n_tokens <= n queries).
  EARSHOT_RETURN_IF_ERROR(scores_.Reserve(
      std::max(AttentionScratchSize(n, n_audio_), AttentionScratchSize(n, n_keys_max)) * ThreadCount(),
      "attention scores"));
  return Status::Ok();
}

Status DecoderSession::Forward(const int* tokens, int rows, int n_tokens, float* logits, bool all_positions) {
  const HyperParams& hp = weights_->hparams();
  const int start = cache_.length();
  if (rows < 1 || rows > cache_.max_rows())
    return Status::Error("decoder: " + std::to_string(rows) + " rows, the session allows 1.." +
                         std::to_string(cache_.max_rows()));
  if (start > 0 && rows != rows_)
    return Status::Error("decoder: " + std::to_string(rows) + " rows given, the cache holds " +
                         std::to_string(rows_));
  if (n_tokens < 1 || n_tokens > cache_.max_positions() - start)
    return Status::Error("decoder: " + std::to_string(start + n_tokens) + " tokens exceed the context of " +
                         std::to_string(cache_.max_positions()));
  for (int i = 0; i < rows * n_tokens; ++i)
    if (tokens[i] < 0 || tokens[i] >= hp.n_vocab)
      return Status::Error("decoder: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
  const int n = rows * n_tokens;
  EARSHOT_RETURN_IF_ERROR(cache_.EnsurePositions(start + n_tokens));
  EARSHOT_RETURN_IF_ERROR(ReserveScratch(n, start + n_tokens));
  rows_ = rows;

  // Token embedding + learned position.
  std::vector<float>& pos = position_row_;
  pos.resize(static_cast<size_t>(d_));
  for (int t = 0; t < n_tokens; ++t) {
    ReadTensorRow(*weights_->text_positions, start + t, pos.data());
    for (int r = 0; r < rows; ++r) {
      float* xr = x_.data() + (static_cast<size_t>(r) * n_tokens + t) * d_;
      ReadTensorRow(*weights_->token_embedding, tokens[r * n_tokens + t], xr);
      for (int i = 0; i < d_; ++i) xr[i] += pos[i];
    }
  }
  for (int l = 0; l < hp.n_text_layer; ++l) EARSHOT_RETURN_IF_ERROR(Block(l, rows, n_tokens));
  cache_.set_length(start + n_tokens);

  // Final LayerNorm, then logits against the (tied) token embedding, only for the rows asked for.
  int n_out = n;
  if (all_positions) {
    LayerNorm(x_.data(), h_.data(), n, d_, weights_->decoder_ln.gamma.data(), weights_->decoder_ln.beta.data());
  } else {
    n_out = rows;
    for (int r = 0; r < rows; ++r)
      LayerNorm(x_.data() + (static_cast<size_t>(r) * n_tokens + n_tokens - 1) * d_,
                h_.data() + static_cast<size_t>(r) * d_, 1, d_, weights_->decoder_ln.gamma.data(),
                weights_->decoder_ln.beta.data());
  }
  return Linear(h_.data(), n_out, static_cast<size_t>(d_), *weights_->token_embedding, logits,
                static_cast<size_t>(hp.n_vocab));
}

Status DecoderSession::Block(int layer, int rows, int n_tokens) {
  const DecoderBlockWeights& w = weights_->decoder_blocks[layer];
  const HyperParams& hp = weights_->hparams();
  const int n = rows * n_tokens;
  const int start = cache_.length();
  const int n_head = hp.n_text_head, d_head = d_ / n_head;
  float* x = x_.data();
  float* h = h_.data();
  GemmEpilogue residual;
  residual.residual = x;
  residual.ld_residual = static_cast<size_t>(d_);

  // Causal self-attention; new keys/values are appended to each row's cache.
  LayerNorm(x, h, n, d_, w.attn_ln.gamma.data(), w.attn_ln.beta.data());
  EARSHOT_RETURN_IF_ERROR(Project(h, n, d_, w.attn.query, q_.data()));
  EARSHOT_RETURN_IF_ERROR(Project(h, n, d_, w.attn.key, k_.data()));
  EARSHOT_RETURN_IF_ERROR(Project(h, n, d_, w.attn.value, v_.data()));
  const size_t chunk = static_cast<size_t>(n_tokens) * d_ * sizeof(float);
  for (int r = 0; r < rows; ++r) {
    std::memcpy(cache_.keys(layer, r) + static_cast<size_t>(start) * d_,
                k_.data() + static_cast<size_t>(r) * n_tokens * d_, chunk);
    std::memcpy(cache_.values(layer, r) + static_cast<size_t>(start) * d_,
                v_.data() + static_cast<size_t>(r) * n_tokens * d_, chunk);
  }
  // One (row, head) pair per unit, shared among threads: each head is read in place as a one-head attention
  // (the same arithmetic as inside a many-head call).
  const size_t self_slot = AttentionScratchSize(n_tokens, start + n_tokens);
  const int64_t work = 2 * static_cast<int64_t>(rows) * n_tokens * (start + n_tokens) * d_;
  const int slots = std::min(SlotsIn(scores_, self_slot), TaskCountFor(work, rows * n_head));
  ParallelForSlots(rows * n_head, slots, [&](int unit, int slot) {
    const int r = unit / n_head;
    const size_t head_offset = static_cast<size_t>(unit % n_head) * d_head;
    const size_t row_offset = static_cast<size_t>(r) * n_tokens * d_ + head_offset;
    AttentionArgs a;
    a.n_q = n_tokens;
    a.n_kv = start + n_tokens;
    a.n_head = 1;
    a.d_head = d_head;
    a.q = q_.data() + row_offset;
    a.ldq = d_;
    a.k = cache_.keys(layer, r) + head_offset;
    a.ldk = cache_.row_stride();
    a.v = cache_.values(layer, r) + head_offset;
    a.ldv = cache_.row_stride();
    a.out = attn_.data() + row_offset;
    a.ldo = d_;
    a.causal_offset = start;
    Attention(a, scores_.data() + slot * self_slot);
  });
  EARSHOT_RETURN_IF_ERROR(Project(attn_.data(), n, d_, w.attn.out, x, residual));

  // Cross-attention over the audio, shared by all rows.
  LayerNorm(x, h, n, d_, w.cross_attn_ln.gamma.data(), w.cross_attn_ln.beta.data());
  EARSHOT_RETURN_IF_ERROR(Project(h, n, d_, w.cross_attn.query, q_.data()));
  AttentionArgs c;
  c.n_q = n;
  c.n_kv = n_audio_;
  c.n_head = n_head;
  c.d_head = d_head;
  c.q = q_.data();
  c.ldq = d_;
  c.k = cross_kv_[2 * layer].data();
  c.ldk = d_;
  c.v = cross_kv_[2 * layer + 1].data();
  c.ldv = d_;
  c.out = attn_.data();
  c.ldo = d_;
  const int cross_slots = SlotsIn(scores_, AttentionScratchSize(n, n_audio_));
  if (cross_int_[layer].n_kv() > 0) {
    if (!AttentionIntegerPrepared(c, cross_int_[layer], cross_slots))
      return Status::Error("out of memory for the cross-attention");
  } else {
    Attention(c, scores_.data(), cross_slots);
  }
  EARSHOT_RETURN_IF_ERROR(Project(attn_.data(), n, d_, w.cross_attn.out, x, residual));

  // MLP.
  LayerNorm(x, h, n, d_, w.mlp_ln.gamma.data(), w.mlp_ln.beta.data());
  GemmEpilogue gelu;
  gelu.gelu = true;
  EARSHOT_RETURN_IF_ERROR(Project(h, n, d_, w.mlp_up, mlp_.data(), gelu));
  return Project(mlp_.data(), n, 4 * d_, w.mlp_down, x, residual);
}

}  // namespace earshot
