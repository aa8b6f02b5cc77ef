#include "model/whisper_weights.h"

#include <cmath>
#include <cstring>

#include "kernels/f16.h"
#include "kernels/linear.h"
#include "kernels/qgemm.h"

namespace earshot {

// Looks tensors up, checks them, and repacks plain quantized matrices into `weights`.
class WhisperWeightsBinder {
 public:
  WhisperWeightsBinder(const Model& model, WhisperWeights* weights) : model_(model), weights_(weights) {}

  // A quantized matrix in the plain layout is replaced by a packed copy the kernels can read.
  Expected<const TensorRef*> Packed(const TensorRef* t) {
    if (t == nullptr || (t->dtype != DType::I8 && t->dtype != DType::I4) || t->layout != TensorLayout::Plain)
      return t;
    weights_->repacked_storage_.emplace_back();
    EARSHOT_ASSIGN_OR_RETURN(TensorRef packed, RepackQuantizedTensor(*t, &weights_->repacked_storage_.back()));
    weights_->repacked_.push_back(std::move(packed));
    return &weights_->repacked_.back();
  }

  Expected<const TensorRef*> Tensor(const std::string& name, std::vector<int64_t> shape, bool optional = false) {
    const TensorRef* t = model_.Find(name);
    if (t == nullptr) {
      if (optional) return static_cast<const TensorRef*>(nullptr);
      return Status::Error("model has no tensor '" + name + "'");
    }
    if (t->shape != shape) return Status::Error("tensor '" + name + "' has an unexpected shape");
    return t;
  }

  Expected<std::vector<float>> Vector(const std::string& name, int64_t n) {
    EARSHOT_ASSIGN_OR_RETURN(const TensorRef* t, Tensor(name, {n}));
    if (t->dtype != DType::F32 && t->dtype != DType::F16)
      return Status::Error("tensor '" + name + "' must be F32 or F16, not " + DTypeName(t->dtype));
    std::vector<float> v(static_cast<size_t>(n));
    ReadTensorRow(*t, 0, v.data());
    return v;
  }

  Status Linear(const std::string& prefix, int out, int in, bool bias, LinearWeights* w, int kernel = 0) {
    std::vector<int64_t> shape = {out, in};
    if (kernel) shape.push_back(kernel);
    EARSHOT_ASSIGN_OR_RETURN(const TensorRef* t, Tensor(prefix + ".weight", shape));
    EARSHOT_ASSIGN_OR_RETURN(w->weight, Packed(t));
    EARSHOT_RETURN_IF_ERROR(CheckLinearWeight(*w->weight, out, kernel ? in * kernel : in));
    if (bias) {
      EARSHOT_ASSIGN_OR_RETURN(w->bias, Vector(prefix + ".bias", out));
    }
    return Status::Ok();
  }

  Status Norm(const std::string& prefix, int d, NormWeights* n) {
    EARSHOT_ASSIGN_OR_RETURN(n->gamma, Vector(prefix + ".weight", d));
    EARSHOT_ASSIGN_OR_RETURN(n->beta, Vector(prefix + ".bias", d));
    return Status::Ok();
  }

  Status Attention(const std::string& prefix, int d, AttentionWeights* a) {
    EARSHOT_RETURN_IF_ERROR(Linear(prefix + ".query", d, d, true, &a->query));
    EARSHOT_RETURN_IF_ERROR(Linear(prefix + ".key", d, d, false, &a->key));
    EARSHOT_RETURN_IF_ERROR(Linear(prefix + ".value", d, d, true, &a->value));
    EARSHOT_RETURN_IF_ERROR(Linear(prefix + ".out", d, d, true, &a->out));
    return Status::Ok();
  }

  // Positional embeddings: F32 or F16, plain.
  Expected<const TensorRef*> Embedding(const std::string& name, int rows, int cols, bool optional = false) {
    EARSHOT_ASSIGN_OR_RETURN(const TensorRef* t, Tensor(name, {rows, cols}, optional));
    if (t && t->dtype != DType::F32 && t->dtype != DType::F16)
      return Status::Error("tensor '" + name + "': " + DTypeName(t->dtype) +
                           " positional embeddings are not supported (F32 or F16 only)");
    if (t && t->layout != TensorLayout::Plain)
      return Status::Error("tensor '" + name + "': packed layouts are not supported for embeddings");
    return t;
  }

  // The token embedding is also the output projection: any dtype Linear takes (quantized ones packed).
  Expected<const TensorRef*> TokenEmbedding(const std::string& name, int rows, int cols) {
    EARSHOT_ASSIGN_OR_RETURN(const TensorRef* t, Tensor(name, {rows, cols}));
    EARSHOT_ASSIGN_OR_RETURN(t, Packed(t));
    EARSHOT_RETURN_IF_ERROR(CheckLinearWeight(*t, rows, cols));
    return t;
  }

 private:
  const Model& model_;
  WhisperWeights* weights_;
};

namespace {

Status CheckHyperParams(const HyperParams& hp) {
  if (hp.n_audio_state != hp.n_text_state)
    return Status::Error("n_audio_state must equal n_text_state");
  if (hp.n_audio_head < 1 || hp.n_audio_state % hp.n_audio_head != 0)
    return Status::Error("n_audio_head must divide n_audio_state");
  if (hp.n_text_head < 1 || hp.n_text_state % hp.n_text_head != 0)
    return Status::Error("n_text_head must divide n_text_state");
  if (hp.n_audio_state % 2 != 0) return Status::Error("n_audio_state must be even");
  if (hp.n_audio_ctx < 1 || hp.n_text_ctx < 2 || hp.n_vocab < 2 || hp.n_mels < 1)
    return Status::Error("hyper-parameters out of range");
  return Status::Ok();
}

}  // namespace

Expected<std::shared_ptr<const WhisperWeights>> WhisperWeights::Bind(std::shared_ptr<const Model> model) {
  if (!model) return Status::Error("no model");
  const HyperParams& hp = model->hparams();
  EARSHOT_RETURN_IF_ERROR(CheckHyperParams(hp));
  auto w = std::make_shared<WhisperWeights>();
  w->model_ = model;
  WhisperWeightsBinder b(*model, w.get());
  const int da = hp.n_audio_state, dt = hp.n_text_state;

  EARSHOT_RETURN_IF_ERROR(b.Linear("encoder.conv1", da, hp.n_mels, true, &w->conv1, 3));
  EARSHOT_RETURN_IF_ERROR(b.Linear("encoder.conv2", da, da, true, &w->conv2, 3));
  EARSHOT_ASSIGN_OR_RETURN(w->audio_positions,
                           b.Embedding("encoder.positional_embedding", hp.n_audio_ctx, da, /*optional=*/true));
  w->encoder_blocks.resize(hp.n_audio_layer);
  for (int i = 0; i < hp.n_audio_layer; ++i) {
    const std::string p = "encoder.blocks." + std::to_string(i);
    EncoderBlockWeights& blk = w->encoder_blocks[i];
    EARSHOT_RETURN_IF_ERROR(b.Norm(p + ".attn_ln", da, &blk.attn_ln));
    EARSHOT_RETURN_IF_ERROR(b.Attention(p + ".attn", da, &blk.attn));
    EARSHOT_RETURN_IF_ERROR(b.Norm(p + ".mlp_ln", da, &blk.mlp_ln));
    EARSHOT_RETURN_IF_ERROR(b.Linear(p + ".mlp.0", 4 * da, da, true, &blk.mlp_up));
    EARSHOT_RETURN_IF_ERROR(b.Linear(p + ".mlp.2", da, 4 * da, true, &blk.mlp_down));
  }
  EARSHOT_RETURN_IF_ERROR(b.Norm("encoder.ln_post", da, &w->ln_post));

  EARSHOT_ASSIGN_OR_RETURN(w->token_embedding, b.TokenEmbedding("decoder.token_embedding.weight", hp.n_vocab, dt));
  EARSHOT_ASSIGN_OR_RETURN(w->text_positions, b.Embedding("decoder.positional_embedding", hp.n_text_ctx, dt));
  w->decoder_blocks.resize(hp.n_text_layer);
  for (int i = 0; i < hp.n_text_layer; ++i) {
    const std::string p = "decoder.blocks." + std::to_string(i);
    DecoderBlockWeights& blk = w->decoder_blocks[i];
    EARSHOT_RETURN_IF_ERROR(b.Norm(p + ".attn_ln", dt, &blk.attn_ln));
    EARSHOT_RETURN_IF_ERROR(b.Attention(p + ".attn", dt, &blk.attn));
    EARSHOT_RETURN_IF_ERROR(b.Norm(p + ".cross_attn_ln", dt, &blk.cross_attn_ln));
    EARSHOT_RETURN_IF_ERROR(b.Attention(p + ".cross_attn", dt, &blk.cross_attn));
    EARSHOT_RETURN_IF_ERROR(b.Norm(p + ".mlp_ln", dt, &blk.mlp_ln));
    EARSHOT_RETURN_IF_ERROR(b.Linear(p + ".mlp.0", 4 * dt, dt, true, &blk.mlp_up));
    EARSHOT_RETURN_IF_ERROR(b.Linear(p + ".mlp.2", dt, 4 * dt, true, &blk.mlp_down));
  }
  EARSHOT_RETURN_IF_ERROR(b.Norm("decoder.ln", dt, &w->decoder_ln));
  return std::shared_ptr<const WhisperWeights>(std::move(w));
}

void ReadTensorRow(const TensorRef& t, int64_t row, float* out) {
  const int64_t cols = t.shape.size() > 1 ? t.numel() / t.shape[0] : t.numel();
  if (t.dtype == DType::I8 || t.dtype == DType::I4) {
    // Bound tensors are checked at load time; an unusable one reads as zeros rather than out of bounds.
    auto q = QWeightsFromTensor(t, static_cast<int>(t.shape[0]), static_cast<int>(cols));
    if (q.ok()) {
      DequantizeQRow(*q, static_cast<int>(row), out);
    } else {
      std::memset(out, 0, static_cast<size_t>(cols) * sizeof(float));
    }
    return;
  }
  if (t.dtype == DType::F32) {
    std::memcpy(out, t.data + static_cast<size_t>(row * cols) * 4, static_cast<size_t>(cols) * 4);
  } else {
    const uint8_t* src = t.data + static_cast<size_t>(row * cols) * 2;
    for (int64_t i = 0; i < cols; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = F16ToF32(h);
    }
  }
}

void WhisperSinusoids(int length, int channels, float* out) {
  const int half = channels / 2;
  // float32 steps as in the reference: increment (rounded to float), exp, then position * inv_timescale.
  const float increment = static_cast<float>(std::log(10000.0) / (half > 1 ? half - 1 : 1));
  std::vector<float> inv_timescale(half);
  for (int i = 0; i < half; ++i)
    inv_timescale[i] = static_cast<float>(std::exp(static_cast<double>(-increment * static_cast<float>(i))));
  for (int t = 0; t < length; ++t) {
    float* row = out + static_cast<size_t>(t) * channels;
    for (int i = 0; i < half; ++i) {
      const float scaled = static_cast<float>(t) * inv_timescale[i];
      row[i] = static_cast<float>(std::sin(static_cast<double>(scaled)));
      row[half + i] = static_cast<float>(std::cos(static_cast<double>(scaled)));
    }
  }
}

}  // namespace earshot
