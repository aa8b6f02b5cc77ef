// The in-memory model: a verified .earshot buffer plus typed views of its contents. Tensor data is never
// copied out of the buffer; TensorRef points into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/status.h"

namespace earshot {

// Must match earshot.fbs: the loader accepts files with this major version only.
constexpr int kSchemaMajor = 1;
constexpr int kSchemaMinor = 2;  // 1.1: HyperParams.conv1_stride; 1.2: HyperParams.edge_silence_ms

// Largest .earshot file: FlatBuffers offsets are signed 32-bit (this also keeps a model loadable in a wasm32 page).
constexpr size_t kMaxModelFileBytes = 0x7FFFFFFE;

enum class DType : int8_t { F32 = 0, F16 = 1, I8 = 2, I4 = 3 };
enum class TensorLayout : int8_t { Plain = 0, PackedTiles = 2 };  // values as in earshot.fbs (1 is retired)
enum class TokenizerKind : int8_t { ByteLevelBpe = 0, SentencePiece = 1 };

const char* DTypeName(DType t);

struct TensorRef {
  std::string name;
  DType dtype = DType::F32;
  TensorLayout layout = TensorLayout::Plain;
  int pack_rows = 0, pack_cols = 0;
  int group_size = 0;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the model buffer
  size_t nbytes = 0;
  const uint8_t* scales = nullptr;
  size_t scales_nbytes = 0;

  int64_t numel() const;
};

struct HyperParams {
  int n_mels = 80;
  int n_audio_ctx = 1500;
  int n_audio_state = 384;
  int n_audio_head = 6;
  int n_audio_layer = 4;
  int n_text_ctx = 448;
  int n_text_state = 384;
  int n_text_head = 6;
  int n_text_layer = 4;
  int n_vocab = 51864;
  bool variable_length_audio = false;
  int conv1_stride = 1;  // 1 (Whisper), 2 or 4; the second convolution always halves the frame rate
  // Variable-length models only: silence the transcriber puts before and after each window's audio (the model was
  // trained with silence around every utterance and may return nothing for speech that starts at the first sample).
  int edge_silence_ms = 0;

  int frames_per_position() const { return 2 * conv1_stride; }
  // Mel frames of one encoder window, the longest input the encoder takes.
  int window_frames() const { return n_audio_ctx * frames_per_position(); }
};

struct MelSettings {
  int sample_rate = 16000;
  int n_fft = 400;
  int hop_length = 160;
  int n_mels = 80;
  int chunk_seconds = 30;
  std::vector<float> filters;  // optional [n_mels, n_fft/2+1]
};

struct Language {
  std::string code;
  int token = -1;
};

struct SpecialTokens {
  int sot = -1, eot = -1, sot_prev = -1, sot_lm = -1, no_speech = -1, no_timestamps = -1;
  int timestamp_begin = -1, transcribe = -1, translate = -1;
  std::vector<Language> languages;
  std::vector<int> suppress_tokens;
  std::vector<int> begin_suppress_tokens;
  std::vector<int> default_prompt;
};

struct Vocabulary {
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  std::vector<std::string> tokens;  // raw bytes of each token
  std::vector<int> special_ids;     // control tokens, never printed
};

struct WerEntry {
  std::string test_set, decoding;
  float wer = 0;
  int words = 0;
};

struct ModelCard {
  std::string name, version, description, license, training_data, extra_json;
  std::vector<std::string> languages;
  std::vector<WerEntry> wer;
};

struct AlignmentHead {
  int layer = 0, head = 0;
};

struct LayerPrecision {
  std::string tensor;
  DType dtype = DType::F32;
  int group_size = 0;
  int64_t bytes = 0;
  float predicted_divergence = 0;
};

struct QuantReport {
  std::string method;
  int64_t budget_bytes = 0, total_bytes = 0;
  float average_bits = 0, measured_divergence = 0;
  std::vector<LayerPrecision> layers;
};

// Everything a .earshot file holds apart from tensor data; shared by the loader and the writer.
struct ModelMeta {
  int schema_major = kSchemaMajor, schema_minor = kSchemaMinor;
  HyperParams hparams;
  MelSettings mel;
  Vocabulary vocab;
  SpecialTokens special;
  ModelCard card;
  std::vector<AlignmentHead> alignment_heads;
  QuantReport quant;  // empty method when the model was not quantized
};

class Model {
 public:
  // Verifies the buffer (FlatBuffers Verifier, then every shape against the hyper-parameters) and keeps it.
  static Expected<std::shared_ptr<const Model>> FromBuffer(AlignedBuffer buffer);
  static Expected<std::shared_ptr<const Model>> FromFile(const std::string& path);

  const ModelMeta& meta() const { return meta_; }
  const HyperParams& hparams() const { return meta_.hparams; }
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* Find(const std::string& name) const;
  size_t file_bytes() const { return buffer_.size(); }

 private:
  AlignedBuffer buffer_;
  ModelMeta meta_;
  std::vector<TensorRef> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// A tensor to be written: owns its bytes (already in the file's dtype and layout).
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  TensorLayout layout = TensorLayout::Plain;
  int pack_rows = 0, pack_cols = 0;
  int group_size = 0;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
};

// Serialises a model (data aligned to 16 bytes). Checks shapes the same way the loader does.
Expected<AlignedBuffer> SerializeModel(const ModelMeta& meta, const std::vector<TensorData>& tensors);

// Bytes a tensor's data and scales occupy for a dtype, layout and shape: the rule the loader enforces (see the
// Tensor table in earshot.fbs). Errors for impossible combinations (bad group size, bad tile, empty shape).
struct TensorStorage {
  size_t data_bytes = 0;
  size_t scales_bytes = 0;
};
Expected<TensorStorage> ComputeTensorStorage(DType dtype, TensorLayout layout, const std::vector<int64_t>& shape,
                                             int group_size, int pack_rows = 0, int pack_cols = 0);

// The loader's sanity check of hyper-parameters (positive, bounded, heads divide widths, equal widths).
Status ValidateHyperParams(const HyperParams& hp);

// "[384, 80, 3]"
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace earshot
