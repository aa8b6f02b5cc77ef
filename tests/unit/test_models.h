// Builds small valid .earshot models with random weights, for tests of the loader, the engine and the tools.
// Header-only; deterministic across native and WebAssembly builds (own float generation from mt19937 output,
// whose sequence the standard fixes, instead of <random> distributions, which differ between libraries).
//
//   earshot::HyperParams hp = earshot::testutil::TinyHyperParams();
//   earshot::AlignedBuffer bytes = earshot::MakeRandomTinyModel(hp, /*seed=*/1);
//   auto model = earshot::Model::FromBuffer(std::move(bytes));
//
// Toy vocabulary (byte-level): regular token i is the printable ASCII character (32 + i % 95) repeated
// i / 95 + 1 times; the last two ids are <|endoftext|> (eot) and <|startoftranscript|> (sot); the default
// prompt is [sot]. No timestamp, language or task tokens.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/aligned_buffer.h"
#include "model/model.h"
#include "model/tensor_names.h"
#include "kernels/f16.h"

namespace earshot {
namespace testutil {

// Small but complete: 2 layers per stack, 2 heads, width 16, 8 mels, 24 encoder positions, vocabulary 64.
inline HyperParams TinyHyperParams() {
  HyperParams hp;
  hp.n_mels = 8;
  hp.n_audio_ctx = 24;
  hp.n_audio_state = 16;
  hp.n_audio_head = 2;
  hp.n_audio_layer = 2;
  hp.n_text_ctx = 16;
  hp.n_text_state = 16;
  hp.n_text_head = 2;
  hp.n_text_layer = 2;
  hp.n_vocab = 64;
  hp.variable_length_audio = true;
  return hp;
}

// Uniform floats in [-1, 1) from mt19937 (bit-exact on every platform).
class TestRng {
 public:
  explicit TestRng(uint32_t seed) : gen_(seed) {}
  float Uniform() { return static_cast<float>(gen_() >> 8) * (2.0f / 16777216.0f) - 1.0f; }
  uint32_t Next() { return gen_(); }

 private:
  std::mt19937 gen_;
};

inline std::string ToyTokenBytes(int i) {
  return std::string(static_cast<size_t>(i / 95 + 1), static_cast<char>(32 + i % 95));
}

inline ModelMeta MakeTinyMeta(const HyperParams& hp) {
  ModelMeta m;
  m.hparams = hp;
  m.mel.n_mels = hp.n_mels;
  m.vocab.kind = TokenizerKind::ByteLevelBpe;
  const int eot = hp.n_vocab - 2, sot = hp.n_vocab - 1;
  for (int i = 0; i < hp.n_vocab; ++i) {
    if (i == eot) {
      m.vocab.tokens.push_back("<|endoftext|>");
    } else if (i == sot) {
      m.vocab.tokens.push_back("<|startoftranscript|>");
    } else {
      m.vocab.tokens.push_back(ToyTokenBytes(i));
    }
  }
  m.vocab.special_ids = {eot, sot};
  m.special.eot = eot;
  m.special.sot = sot;
  m.special.default_prompt = {sot};
  m.card.name = "random-tiny";
  m.card.description = "random weights for tests";
  return m;
}

// Stores float values in `dtype`. Quantized dtypes treat the tensor as [shape[0], rest] (see earshot.fbs):
// I8 with one f32 scale per row, I4 with f16 scales per group of the largest of 64/32/.../2 dividing cols.
inline TensorData EncodeTestTensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& values,
                                   DType dtype) {
  TensorData t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.dtype = dtype;
  const size_t n = values.size();
  const size_t rows = static_cast<size_t>(t.shape[0]), cols = n / rows;
  switch (dtype) {
    case DType::F32:
      t.data.resize(n * 4);
      std::memcpy(t.data.data(), values.data(), n * 4);
      break;
    case DType::F16:
      t.data.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToF16(values[i]);
        std::memcpy(&t.data[2 * i], &h, 2);
      }
      break;
    case DType::I8:
      t.data.resize(n);
      t.scales.resize(rows * 4);
      for (size_t r = 0; r < rows; ++r) {
        float max_abs = 0;
        for (size_t c = 0; c < cols; ++c) max_abs = std::fmax(max_abs, std::fabs(values[r * cols + c]));
        const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
        std::memcpy(&t.scales[r * 4], &scale, 4);
        for (size_t c = 0; c < cols; ++c) {
          const float q = std::nearbyint(values[r * cols + c] / scale);
          t.data[r * cols + c] = static_cast<uint8_t>(static_cast<int8_t>(std::fmax(-127.f, std::fmin(127.f, q))));
        }
      }
      break;
    case DType::I4: {
      int group = 64;
      while (group > 2 && cols % group != 0) group /= 2;
      t.group_size = group;
      const size_t groups = cols / group;
      t.data.assign(n / 2, 0);
      t.scales.resize(rows * groups * 2);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t g = 0; g < groups; ++g) {
          float max_abs = 0;
          for (int k = 0; k < group; ++k) max_abs = std::fmax(max_abs, std::fabs(values[r * cols + g * group + k]));
          const uint16_t scale_h = F32ToF16(max_abs > 0 ? max_abs / 7.0f : 1.0f);
          std::memcpy(&t.scales[(r * groups + g) * 2], &scale_h, 2);
          const float scale = F16ToF32(scale_h);
          for (int k = 0; k < group; ++k) {
            const size_t i = r * cols + g * group + k;
            const float q = std::fmax(-8.f, std::fmin(7.f, std::nearbyint(values[i] / scale)));
            const uint8_t nibble = static_cast<uint8_t>(static_cast<int>(q) & 0xF);
            t.data[i / 2] |= (i % 2 == 0) ? nibble : static_cast<uint8_t>(nibble << 4);
          }
        }
      }
      break;
    }
  }
  return t;
}

// Random weights for every required tensor (plus encoder.positional_embedding when asked). Matrices are uniform
// in +-1/sqrt(fan_in) and stored as `matrix_dtype` (quantized dtypes only for weight matrices; positional
// embeddings then stay F16); LayerNorm gains near 1, biases small, all F32.
inline std::vector<TensorData> MakeRandomTinyTensors(const HyperParams& hp, uint32_t seed,
                                                     DType matrix_dtype = DType::F32,
                                                     bool with_audio_positional_embedding = false) {
  TestRng rng(seed);
  std::vector<TensorData> out;
  for (const TensorSpec& spec : ExpectedTensorSpecs(hp)) {
    if (!spec.required && !with_audio_positional_embedding) continue;
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    const int64_t fan_in = spec.shape.size() > 1 ? numel / spec.shape[0] : 1;
    std::vector<float> v(static_cast<size_t>(numel));
    DType dtype = DType::F32;
    switch (spec.role) {
      case TensorRole::kNormWeight:
        for (float& x : v) x = 1.0f + 0.1f * rng.Uniform();
        break;
      case TensorRole::kNormBias:
      case TensorRole::kBias:
        for (float& x : v) x = 0.05f * rng.Uniform();
        break;
      case TensorRole::kPositionalEmbedding:
        for (float& x : v) x = 0.1f * rng.Uniform();
        dtype = matrix_dtype == DType::F32 ? DType::F32 : DType::F16;
        break;
      default: {
        const float a = 1.0f / std::sqrt(static_cast<float>(fan_in));
        for (float& x : v) x = a * rng.Uniform();
        dtype = matrix_dtype;
        break;
      }
    }
    out.push_back(EncodeTestTensor(spec.name, spec.shape, v, dtype));
  }
  return out;
}

// A serialized valid model; on failure the test fails and the buffer is empty.
inline AlignedBuffer MakeRandomTinyModel(const HyperParams& hp, uint32_t seed, DType matrix_dtype = DType::F32) {
  auto bytes = SerializeModel(MakeTinyMeta(hp), MakeRandomTinyTensors(hp, seed, matrix_dtype));
  if (!bytes.ok()) {
    ADD_FAILURE() << "MakeRandomTinyModel: " << bytes.status().message();
    return AlignedBuffer();
  }
  return std::move(bytes).value();
}

}  // namespace testutil

using testutil::MakeRandomTinyModel;

}  // namespace earshot
