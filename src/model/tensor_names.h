// The canonical tensor set of a Whisper-architecture model (OpenAI state_dict names), derived from the
// hyper-parameters: the loader checks files against it and the importers and writers produce it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace earshot {

// What a tensor is used for; decides which dtypes and layouts it may be stored in.
enum class TensorRole : uint8_t {
  kLinearWeight,         // [out, in]
  kConvWeight,           // [out, in, kernel]
  kTokenEmbedding,       // [n_vocab, d]; also the (tied) output projection
  kPositionalEmbedding,  // [ctx, d]; added to activations
  kBias,                 // [out]
  kNormWeight,           // LayerNorm gain [d]
  kNormBias,             // LayerNorm shift [d]
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::kLinearWeight;
  bool required = true;
};

// Every tensor a model with these hyper-parameters may hold, in Whisper's state_dict order. The only
// optional one is encoder.positional_embedding (absent: the engine computes Whisper's sinusoids).
std::vector<TensorSpec> ExpectedTensorSpecs(const HyperParams& hp);

// Weight matrices (linear, conv, token embedding): these may be quantized (I8/I4) or packed.
bool IsQuantizableRole(TensorRole role);
// Matrices and embeddings: stored as F16 by `--dtype f16` imports; vectors stay F32.
bool IsMatrixRole(TensorRole role);
bool DTypeAllowedForRole(TensorRole role, DType dtype);
const char* TensorRoleName(TensorRole role);

}  // namespace earshot
