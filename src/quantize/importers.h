// Importers: our own float checkpoints and Hugging Face Whisper folders to an in-memory model that
// SerializeModel turns into a .earshot file (`earshot import checkpoint|whisper DIR -o OUT`).
//
// Default prompt rule (what the decoder starts from; importers store it, the decoder extends it):
//   * Whisper checkpoints, English-only or multilingual: default_prompt = [sot].
//   * At run time the decoder appends, in this order and only when not already present:
//       - for multilingual models (special.languages non-empty): the language token (run-time option, default
//         "en") and the transcribe token;
//       - when timestamps are off and special.no_timestamps >= 0: the no_timestamps token.
//     So an English-only Whisper model decodes from [sot, notimestamps] and a multilingual one from
//     [sot, <|en|>, transcribe, notimestamps], as Whisper does.
//   * Our checkpoints store whatever config.json's default_prompt says (usually [sot]); the same run-time rule applies.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"
#include "model/tensor_names.h"

namespace earshot {

struct ImportOptions {
  // Storage of weight matrices and embeddings: F16 (default) or F32. Biases and LayerNorm parameters stay F32.
  // I8 / I4 quantize uniformly (quantize/quantize_uniform.h): linear and conv weights and the token embedding
  // (int8 at least, being the output projection); positional embeddings are then stored as F16.
  DType matrix_dtype = DType::F16;
  int group_size = 32;  // I4 only
};

struct ImportedModel {
  ModelMeta meta;
  std::vector<TensorData> tensors;
  std::vector<std::string> notes;  // decisions worth telling the user (dropped tensors, generated tokens, ...)
};

// DIR/config.json ("format": "earshot-checkpoint"), DIR/model.safetensors (F32, canonical names), DIR/tokenizer.json.
Expected<ImportedModel> ImportCheckpoint(const std::string& dir, const ImportOptions& options = {});

// A Hugging Face Whisper folder: config.json, model.safetensors (or shards + model.safetensors.index.json),
// vocab.json (+ added_tokens.json) or tokenizer.json, and optionally generation_config.json,
// preprocessor_config.json, special_tokens_map.json.
Expected<ImportedModel> ImportWhisper(const std::string& dir, const ImportOptions& options = {});

// Serializes (with the loader's verification) and writes the file via a temporary name, so a failed write
// never leaves a half-written model at `path`.
Status WriteModelFile(const ImportedModel& model, const std::string& path);

// ---- pieces shared by the importers (exposed for tests) ----------------------------------------------------

// Whisper's encoder positional encoding [length, channels]: [sin | cos] with log(10000)/(channels/2 - 1)
// timescale increments, computed in float32 like PyTorch. channels must be even and >= 4.
std::vector<float> WhisperSinusoids(int length, int channels);

// Hugging Face Whisper parameter name to the canonical name ("model." prefix optional). Returns "" for
// proj_out.weight (the tied output projection, checked separately); an error for names it does not know.
Expected<std::string> CanonicalWhisperName(const std::string& hf_name);

// A tensor found in a checkpoint under its canonical name.
struct SourceTensor {
  std::string source_name;  // the name in the checkpoint, for messages
  std::string dtype;        // safetensors dtype name
  std::vector<int64_t> shape;
  std::function<Expected<std::vector<float>>()> read;
};

// Converts checkpoint tensors to the file's tensors for these hyper-parameters: every required tensor present
// with the expected shape, finite values, no unknown tensors; key-projection biases must be absent or zero
// (then dropped); an encoder positional embedding equal to Whisper's sinusoids is dropped (the engine
// computes it). Matrices and embeddings are stored as options.matrix_dtype, vectors as F32.
Expected<std::vector<TensorData>> ConvertCheckpointTensors(const HyperParams& hp,
                                                           const std::map<std::string, SourceTensor>& source,
                                                           const ImportOptions& options,
                                                           std::vector<std::string>* notes);

// The inverse of ImportCheckpoint: writes DIR/config.json, DIR/model.safetensors (every tensor of the file as F32,
// quantized ones dequantized) and DIR/tokenizer.json, creating DIR if needed. Importing the folder again with the
// file's precision gives back the same tensors; training can start from it (a fine-tuning stage of a shipped file).
// Refused for a model with its own mel filter bank, which the checkpoint format does not carry.
Status ExportCheckpoint(const Model& model, const std::string& dir);

// Refuses, before any weight is read, a model whose file would not fit the 2 GB .earshot / wasm32 limit.
Status CheckModelFits(const HyperParams& hp, const ImportOptions& options);

}  // namespace earshot
