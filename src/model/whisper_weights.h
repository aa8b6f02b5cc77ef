// The tensors of a Whisper-architecture model, looked up and checked once, ready for the encoder and the
// decoder. Matrices stay in the model buffer (read in place by the kernels); only the small vectors (biases,
// LayerNorm parameters) are converted to owned f32 copies, since they may be stored as F16. Quantized matrices
// stored in the plain layout are repacked once into the kernels' layout (owned here); files written by our
// quantizer are already packed and used in place.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "model/model.h"

namespace earshot {

struct LinearWeights {
  const TensorRef* weight = nullptr;  // [out, in] (conv: [out, in, 3])
  std::vector<float> bias;            // empty when the layer has none (attention keys)
  const float* bias_or_null() const { return bias.empty() ? nullptr : bias.data(); }
};

struct NormWeights {
  std::vector<float> gamma, beta;
};

struct AttentionWeights {
  LinearWeights query, key, value, out;
};

struct EncoderBlockWeights {
  NormWeights attn_ln, mlp_ln;
  AttentionWeights attn;
  LinearWeights mlp_up, mlp_down;  // mlp.0, mlp.2
};

struct DecoderBlockWeights {
  NormWeights attn_ln, cross_attn_ln, mlp_ln;
  AttentionWeights attn, cross_attn;
  LinearWeights mlp_up, mlp_down;
};

class WhisperWeights {
 public:
  // Finds and checks every tensor (shapes against the hyper-parameters, dtypes the float kernels can use).
  // Keeps the model alive.
  static Expected<std::shared_ptr<const WhisperWeights>> Bind(std::shared_ptr<const Model> model);

  const Model& model() const { return *model_; }
  const HyperParams& hparams() const { return model_->hparams(); }

  LinearWeights conv1, conv2;
  const TensorRef* audio_positions = nullptr;  // [n_audio_ctx, d]; null: Whisper sinusoids
  std::vector<EncoderBlockWeights> encoder_blocks;
  NormWeights ln_post;

  const TensorRef* token_embedding = nullptr;  // [n_vocab, d]; also the output projection
  const TensorRef* text_positions = nullptr;   // [n_text_ctx, d]
  std::vector<DecoderBlockWeights> decoder_blocks;
  NormWeights decoder_ln;

 private:
  friend class WhisperWeightsBinder;
  std::shared_ptr<const Model> model_;
  // Repacked copies of plain I8/I4 matrices; the deque keeps TensorRef addresses stable.
  std::deque<TensorRef> repacked_;
  std::deque<AlignedBuffer> repacked_storage_;
};

// Copies row `row` of a [rows, cols] F32 or F16 tensor into out[cols] as f32; I8/I4 matrices (packed, as
// bound here) are dequantized.
void ReadTensorRow(const TensorRef& t, int64_t row, float* out);

// Whisper's encoder positional encoding for `length` positions and `channels` (even) channels:
// [sin | cos] halves with log(10000)/(channels/2 - 1) timescale increments, computed with the same float32
// steps as the reference so the values agree to the last bit or two. out is [length, channels].
void WhisperSinusoids(int length, int channels, float* out);

}  // namespace earshot
