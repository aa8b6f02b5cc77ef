// The Whisper text decoder, batched over rows (beams). Cross-attention keys/values are computed once per
// utterance from the encoder output and shared by every row; self-attention uses a key/value cache that
// beam search reorders by source row.
#pragma once

#include <memory>
#include <vector>

#include "core/status.h"
#include "kernels/attention.h"
#include "kernels/float_buffer.h"
#include "model/kv_cache.h"
#include "model/whisper_weights.h"

namespace earshot {

class DecoderSession {
 public:
  // Starts decoding one utterance: computes the cross-attention keys/values of every layer from the encoder
  // output [n_audio, d] and sets up a cache for `max_rows` rows of up to `max_positions` tokens
  // (<= n_text_ctx); the cache's memory grows with the decoded length, not with max_positions.
  static Expected<DecoderSession> Start(std::shared_ptr<const WhisperWeights> weights, const float* encoder_out,
                                        int n_audio, int max_rows, int max_positions);

  // Appends n_tokens tokens to each of `rows` rows (tokens row-major [rows][n_tokens]) and writes logits:
  // of each row's last new token, [rows][n_vocab], or with all_positions of every new token,
  // [rows][n_tokens][n_vocab]. Before the first call any row count up to max_rows is allowed; afterwards
  // `rows` must equal the current row count (set by the first call or by ReorderRows).
  Status Forward(const int* tokens, int rows, int n_tokens, float* logits, bool all_positions = false);

  // Row i continues old row source_rows[i]; the row count becomes source_rows.size().
  Status ReorderRows(const std::vector<int>& source_rows);

  // Allocates the self-attention cache for `positions` tokens per row now (<= max_positions) instead of
  // growing it during Forward. Results are the same either way.
  Status ReservePositions(int positions) { return cache_.EnsurePositions(positions); }

  // Forgets every cached token (the cross-attention keys/values stay).
  void Reset();

  int length() const { return cache_.length(); }
  int rows() const { return rows_; }
  int n_vocab() const { return weights_->hparams().n_vocab; }
  int max_positions() const { return cache_.max_positions(); }
  // Floats the self-attention cache holds now (it grows as tokens are decoded).
  size_t cache_floats() const { return cache_.allocated_floats(); }

 private:
  Status ReserveScratch(int n_rows_total, int n_keys_max);
  Status Block(int layer, int rows, int n_tokens);

  std::shared_ptr<const WhisperWeights> weights_;
  int n_audio_ = 0, d_ = 0, rows_ = 0;
  std::vector<FloatBuffer> cross_kv_;  // [layer][k|v], each [n_audio][d]; empty for a layer in cross_int_
  // Quantized models: each layer's cross-attention keys and values as integer operands (empty: float layer).
  std::vector<IntegerKeyValues> cross_int_;
  KvCache cache_;
  // Scratch, grown on demand and reused across calls.
  FloatBuffer x_, h_, q_, k_, v_, attn_, mlp_, scores_;
  std::vector<float> position_row_;
};

}  // namespace earshot
