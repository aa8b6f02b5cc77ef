#include "model/tensor_names.h"

namespace earshot {
namespace {

class SpecList {
 public:
  void Add(std::string name, std::vector<int64_t> shape, TensorRole role, bool required = true) {
    specs_.push_back({std::move(name), std::move(shape), role, required});
  }
  void Linear(const std::string& prefix, int64_t out, int64_t in, bool bias) {
    Add(prefix + ".weight", {out, in}, TensorRole::kLinearWeight);
    if (bias) Add(prefix + ".bias", {out}, TensorRole::kBias);
  }
  void LayerNorm(const std::string& prefix, int64_t d) {
    Add(prefix + ".weight", {d}, TensorRole::kNormWeight);
    Add(prefix + ".bias", {d}, TensorRole::kNormBias);
  }
  // Whisper attention: the key projection has no bias.
  void Attention(const std::string& prefix, int64_t d, int64_t d_kv_in) {
    Linear(prefix + ".query", d, d, true);
    Linear(prefix + ".key", d, d_kv_in, false);
    Linear(prefix + ".value", d, d_kv_in, true);
    Linear(prefix + ".out", d, d, true);
  }
  void Mlp(const std::string& prefix, int64_t d) {
    Linear(prefix + ".0", 4 * d, d, true);
    Linear(prefix + ".2", d, 4 * d, true);
  }
  std::vector<TensorSpec> Take() { return std::move(specs_); }

 private:
  std::vector<TensorSpec> specs_;
};

}  // namespace

std::vector<TensorSpec> ExpectedTensorSpecs(const HyperParams& hp) {
  const int64_t da = hp.n_audio_state, dt = hp.n_text_state;
  SpecList s;
  s.Add("encoder.conv1.weight", {da, hp.n_mels, 3}, TensorRole::kConvWeight);
  s.Add("encoder.conv1.bias", {da}, TensorRole::kBias);
  s.Add("encoder.conv2.weight", {da, da, 3}, TensorRole::kConvWeight);
  s.Add("encoder.conv2.bias", {da}, TensorRole::kBias);
  s.Add("encoder.positional_embedding", {hp.n_audio_ctx, da}, TensorRole::kPositionalEmbedding,
        /*required=*/false);
  for (int i = 0; i < hp.n_audio_layer; ++i) {
    const std::string p = "encoder.blocks." + std::to_string(i);
    s.Attention(p + ".attn", da, da);
    s.LayerNorm(p + ".attn_ln", da);
    s.Mlp(p + ".mlp", da);
    s.LayerNorm(p + ".mlp_ln", da);
  }
  s.LayerNorm("encoder.ln_post", da);

  s.Add("decoder.token_embedding.weight", {hp.n_vocab, dt}, TensorRole::kTokenEmbedding);
  s.Add("decoder.positional_embedding", {hp.n_text_ctx, dt}, TensorRole::kPositionalEmbedding);
  for (int i = 0; i < hp.n_text_layer; ++i) {
    const std::string p = "decoder.blocks." + std::to_string(i);
    s.Attention(p + ".attn", dt, dt);
    s.LayerNorm(p + ".attn_ln", dt);
    s.Attention(p + ".cross_attn", dt, da);
    s.LayerNorm(p + ".cross_attn_ln", dt);
    s.Mlp(p + ".mlp", dt);
    s.LayerNorm(p + ".mlp_ln", dt);
  }
  s.LayerNorm("decoder.ln", dt);
  return s.Take();
}

bool IsQuantizableRole(TensorRole role) {
  return role == TensorRole::kLinearWeight || role == TensorRole::kConvWeight || role == TensorRole::kTokenEmbedding;
}

bool IsMatrixRole(TensorRole role) { return IsQuantizableRole(role) || role == TensorRole::kPositionalEmbedding; }

bool DTypeAllowedForRole(TensorRole role, DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::F16:
      return true;
    case DType::I8:
    case DType::I4:
      return IsQuantizableRole(role);
  }
  return false;
}

const char* TensorRoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kLinearWeight:
      return "linear weight";
    case TensorRole::kConvWeight:
      return "conv weight";
    case TensorRole::kTokenEmbedding:
      return "token embedding";
    case TensorRole::kPositionalEmbedding:
      return "positional embedding";
    case TensorRole::kBias:
      return "bias";
    case TensorRole::kNormWeight:
      return "layer-norm weight";
    case TensorRole::kNormBias:
      return "layer-norm bias";
  }
  return "tensor";
}

}  // namespace earshot
