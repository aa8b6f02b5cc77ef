// Writes small checkpoint folders (ours and Hugging Face Whisper) with random weights for the importer tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/f16.h"
#include "model/tensor_names.h"
#include "quantize/importers.h"
#include "quantize/safetensors.h"
#include "quantize/tokenizer_import.h"
#include "unit/test_models.h"

namespace earshot {
namespace importtest {

using Json = nlohmann::json;

// A fresh, empty folder under the build tree.
inline std::string FreshDir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(EARSHOT_BINARY_DIR) / "import_tests" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

inline void WriteJson(const std::string& path, const Json& j) { WriteText(path, j.dump(1)); }

// Whether `got` can be the quantization of `source` on a grid of step `scale` with levels low..high: within half a
// step, or, for a weight beyond the grid's ends, that end (int4 scales may clip a group's largest weights to 7 or
// -8 steps, see quantize/quantize_uniform.h).
inline bool OnQuantizationGrid(float source, float got, float scale, int low, int high) {
  const float tolerance = 1e-6f + 1e-5f * std::fabs(source);
  if (std::fabs(got - source) <= 0.5f * scale * 1.0001f + tolerance) return true;
  if (source > high * scale) return std::fabs(got - high * scale) <= tolerance;
  if (source < low * scale) return std::fabs(got - low * scale) <= tolerance;
  return false;
}

inline std::vector<float> RandomValues(int64_t n, testutil::TestRng* rng, float scale = 0.5f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * rng->Uniform();
  return v;
}

// Canonical name -> values of every tensor of a Whisper-architecture model with these hyper-parameters.
inline std::map<std::string, std::vector<float>> RandomCanonicalWeights(const HyperParams& hp, uint32_t seed,
                                                                        bool with_audio_positions) {
  testutil::TestRng rng(seed);
  std::map<std::string, std::vector<float>> out;
  for (const TensorSpec& s : ExpectedTensorSpecs(hp)) {
    if (!s.required && !with_audio_positions) continue;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    out[s.name] = RandomValues(n, &rng);
  }
  return out;
}

inline std::vector<int64_t> ShapeOf(const HyperParams& hp, const std::string& canonical) {
  for (const TensorSpec& s : ExpectedTensorSpecs(hp)) {
    if (s.name == canonical) return s.shape;
  }
  return {};  // not a canonical tensor (tests write such on purpose)
}

// Our checkpoint format (config.json + model.safetensors + tokenizer.json), SentencePiece vocabulary:
// 0 <unk>, 1 <s> (sot), 2 </s> (eot), 3 <0x0A>, 4 "▁the", 5 "▁hello", then "▁wN" filler pieces.
struct CheckpointFolder {
  HyperParams hp;
  Json config;
  Json tokenizer;
  std::map<std::string, std::vector<float>> weights;
};

inline CheckpointFolder MakeCheckpointFolder(uint32_t seed) {
  CheckpointFolder f;
  HyperParams& hp = f.hp;
  hp = testutil::TinyHyperParams();
  hp.n_vocab = 40;
  f.config = {
      {"format", "earshot-checkpoint"},
      {"format_version", 1},
      {"dims",
       {{"n_mels", hp.n_mels},
        {"n_audio_ctx", hp.n_audio_ctx},
        {"n_audio_state", hp.n_audio_state},
        {"n_audio_head", hp.n_audio_head},
        {"n_audio_layer", hp.n_audio_layer},
        {"n_text_ctx", hp.n_text_ctx},
        {"n_text_state", hp.n_text_state},
        {"n_text_head", hp.n_text_head},
        {"n_text_layer", hp.n_text_layer},
        {"n_vocab", hp.n_vocab}}},
      {"variable_length_audio", true},
      {"mel",
       {{"sample_rate", 16000}, {"n_fft", 400}, {"hop_length", 160}, {"n_mels", hp.n_mels}, {"chunk_seconds", 30}}},
      {"special_tokens", {{"sot", 1}, {"eot", 2}, {"no_speech", -1}, {"transcribe", 6}}},
      {"languages", {{{"code", "en"}, {"token", 7}}}},
      {"suppress_tokens", {0, 3}},
      {"begin_suppress_tokens", {2}},
      {"default_prompt", {1}},
      {"alignment_heads", {{1, 0}, {1, 1}}},
      {"card",
       {{"name", "earshot-tiny"},
        {"version", "0.1"},
        {"description", "test model"},
        {"languages", {"en"}},
        {"license", "MIT"},
        {"training_data", "synthetic"},
        {"wer", {{{"test_set", "dev"}, {"decoding", "beam5"}, {"wer", 12.5}, {"words", 456}}}},
        {"extra", {{"steps", 1000}, {"notes", {"a", "b"}}}}}}};
  Json pieces = {"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81the", "\xE2\x96\x81hello", "<|transcribe|>", "<|en|>"};
  while (pieces.size() < static_cast<size_t>(hp.n_vocab))
    pieces.push_back("\xE2\x96\x81w" + std::to_string(pieces.size()));
  f.tokenizer = {{"kind", "sentencepiece"}, {"pieces", pieces}, {"special_ids", {0, 1, 2, 6, 7}}};
  f.weights = RandomCanonicalWeights(hp, seed, /*with_audio_positions=*/false);
  return f;
}

inline void WriteCheckpointFolder(const CheckpointFolder& f, const std::string& dir) {
  WriteJson(dir + "/config.json", f.config);
  WriteJson(dir + "/tokenizer.json", f.tokenizer);
  std::vector<SafeTensorToWrite> tensors;
  for (const auto& [name, values] : f.weights) {
    std::vector<int64_t> shape = ShapeOf(f.hp, name);
    if (shape.empty()) shape = {static_cast<int64_t>(values.size())};  // deliberately unknown tensors
    tensors.push_back(MakeSafeTensor(name, shape, values));
  }
  ASSERT_TRUE(WriteSafeTensors(dir + "/model.safetensors", tensors).ok());
}

// ---- Hugging Face Whisper ---------------------------------------------------------------------------------

// The Hugging Face parameter name of a canonical tensor ("model." prefix included).
inline std::string HfName(const std::string& canonical) {
  static const std::vector<std::pair<std::string, std::string>> kFixed = {
      {"encoder.positional_embedding", "encoder.embed_positions.weight"},
      {"encoder.ln_post.", "encoder.layer_norm."},
      {"decoder.token_embedding.weight", "decoder.embed_tokens.weight"},
      {"decoder.positional_embedding", "decoder.embed_positions.weight"},
      {"decoder.ln.", "decoder.layer_norm."},
  };
  for (const auto& [from, to] : kFixed) {
    if (canonical.compare(0, from.size(), from) == 0) return "model." + to + canonical.substr(from.size());
  }
  std::string n = canonical;
  const auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = n.find(from);
    if (at != std::string::npos) n.replace(at, from.size(), to);
  };
  replace(".blocks.", ".layers.");
  replace(".cross_attn_ln.", ".encoder_attn_layer_norm.");
  replace(".cross_attn.query.", ".encoder_attn.q_proj.");
  replace(".cross_attn.key.", ".encoder_attn.k_proj.");
  replace(".cross_attn.value.", ".encoder_attn.v_proj.");
  replace(".cross_attn.out.", ".encoder_attn.out_proj.");
  replace(".attn_ln.", ".self_attn_layer_norm.");
  replace(".attn.query.", ".self_attn.q_proj.");
  replace(".attn.key.", ".self_attn.k_proj.");
  replace(".attn.value.", ".self_attn.v_proj.");
  replace(".attn.out.", ".self_attn.out_proj.");
  replace(".mlp_ln.", ".final_layer_norm.");
  replace(".mlp.0.", ".fc1.");
  replace(".mlp.2.", ".fc2.");
  return "model." + n;
}

struct WhisperFolderOptions {
  bool multilingual = false;
  std::vector<std::string> languages = {"en", "de", "haw"};
  bool tokenizer_json = false;   // tokenizer.json instead of vocab.json + added_tokens.json
  bool list_timestamps = false;  // list <|0.00|>.. as added tokens (else the importer generates them)
  bool sharded = false;
  bool model_prefix = true;              // "model." in parameter names
  bool learned_audio_positions = false;  // else Whisper's sinusoids
  std::string dtype = "F32";
  int n_regular = 300;  // regular byte-level tokens before <|endoftext|>
  int n_mels = 8;
};

struct WhisperFolder {
  HyperParams hp;
  Json config, generation;
  std::map<std::string, std::vector<float>> weights;  // canonical names, values as written (before dtype)
  int eot = -1, sot = -1, translate = -1, transcribe = -1, sot_lm = -1, sot_prev = -1, no_speech = -1,
      no_timestamps = -1, timestamp_begin = -1;
  std::map<std::string, int> language_ids;
};

// Regular token i: the 256 single bytes in GPT-2's byte-level spelling, then "Ġhello", "Ġthe", then fillers.
inline std::string RegularTokenText(int i) {
  if (i < 256) return BytesToByteLevel(std::string(1, static_cast<char>(i)));
  if (i == 256) return "\xC4\xA0hello";  // "Ġhello"
  if (i == 257) return "\xC4\xA0the";
  return "tok" + std::to_string(i);
}

inline WhisperFolder MakeWhisperFolder(const WhisperFolderOptions& o, uint32_t seed) {
  WhisperFolder f;
  int next = o.n_regular;
  f.eot = next++;
  f.sot = next++;
  for (const std::string& l : o.languages) f.language_ids[l] = next++;
  f.translate = next++;
  f.transcribe = next++;
  f.sot_lm = next++;
  f.sot_prev = next++;
  f.no_speech = next++;
  f.no_timestamps = next++;
  f.timestamp_begin = next;
  next += 1501;
  HyperParams& hp = f.hp;
  hp.n_mels = o.n_mels;
  hp.n_audio_ctx = 12;
  hp.n_audio_state = hp.n_text_state = 8;
  hp.n_audio_head = hp.n_text_head = 2;
  hp.n_audio_layer = hp.n_text_layer = 2;
  hp.n_text_ctx = 10;
  hp.n_vocab = next;
  hp.variable_length_audio = false;
  f.config = {{"model_type", "whisper"},
              {"_name_or_path", "tiny-test/whisper-random"},
              {"d_model", 8},
              {"encoder_layers", 2},
              {"encoder_attention_heads", 2},
              {"decoder_layers", 2},
              {"decoder_attention_heads", 2},
              {"encoder_ffn_dim", 32},
              {"decoder_ffn_dim", 32},
              {"num_mel_bins", o.n_mels},
              {"max_source_positions", 12},
              {"max_target_positions", 10},
              {"vocab_size", hp.n_vocab},
              {"activation_function", "gelu"},
              {"scale_embedding", false},
              {"decoder_start_token_id", f.sot},
              {"eos_token_id", f.eot}};
  f.generation = {{"suppress_tokens", {1, 2, f.sot_prev}}, {"begin_suppress_tokens", {220, f.eot}},
                  {"alignment_heads", {{1, 0}, {1, 1}}},   {"no_timestamps_token_id", f.no_timestamps},
                  {"decoder_start_token_id", f.sot},       {"is_multilingual", o.multilingual}};
  if (o.multilingual) {
    Json lang_to_id = Json::object();
    for (const auto& [code, id] : f.language_ids) lang_to_id["<|" + code + "|>"] = id;
    f.generation["lang_to_id"] = lang_to_id;
  }
  f.weights = RandomCanonicalWeights(hp, seed, /*with_audio_positions=*/true);
  if (!o.learned_audio_positions) f.weights["encoder.positional_embedding"] = WhisperSinusoids(hp.n_audio_ctx, 8);
  return f;
}

inline void WriteWhisperFolder(const WhisperFolder& f, const WhisperFolderOptions& o, const std::string& dir) {
  WriteJson(dir + "/config.json", f.config);
  WriteJson(dir + "/generation_config.json", f.generation);
  WriteJson(dir + "/preprocessor_config.json", {{"feature_size", o.n_mels},
                                                {"sampling_rate", 16000},
                                                {"hop_length", 160},
                                                {"n_fft", 400},
                                                {"chunk_length", 30}});
  Json vocab = Json::object();
  for (int i = 0; i < o.n_regular; ++i) vocab[RegularTokenText(i)] = i;
  vocab["<|endoftext|>"] = f.eot;
  std::vector<std::pair<std::string, int>> added = {{"<|endoftext|>", f.eot}, {"<|startoftranscript|>", f.sot}};
  for (const auto& [code, id] : f.language_ids) added.push_back({"<|" + code + "|>", id});
  added.insert(added.end(), {{"<|translate|>", f.translate},
                             {"<|transcribe|>", f.transcribe},
                             {"<|startoflm|>", f.sot_lm},
                             {"<|startofprev|>", f.sot_prev},
                             {"<|nocaptions|>", f.no_speech},
                             {"<|notimestamps|>", f.no_timestamps}});
  if (o.list_timestamps) {
    for (int k = 0; k < 1501; ++k) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "<|%.2f|>", k * 0.02);
      added.push_back({buf, f.timestamp_begin + k});
    }
  }
  Json additional = Json::array();
  for (const auto& [text, id] : added) additional.push_back(text);
  WriteJson(dir + "/special_tokens_map.json", {{"eos_token", {{"content", "<|endoftext|>"}, {"lstrip", false}}},
                                               {"unk_token", "<|endoftext|>"},
                                               {"additional_special_tokens", additional}});
  if (o.tokenizer_json) {
    Json added_list = Json::array();
    for (const auto& [text, id] : added) {
      added_list.push_back({{"id", id}, {"content", text}, {"special", true}, {"normalized", false}});
    }
    WriteJson(dir + "/tokenizer.json", {{"version", "1.0"},
                                        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", Json::array()}}},
                                        {"added_tokens", added_list}});
  } else {
    WriteJson(dir + "/vocab.json", vocab);
    Json added_map = Json::object();
    for (const auto& [text, id] : added) added_map[text] = id;
    WriteJson(dir + "/added_tokens.json", added_map);
    WriteText(dir + "/merges.txt", "#version: 0.2\n\xC4\xA0 t\n");
  }

  std::vector<SafeTensorToWrite> tensors;
  for (const auto& [name, values] : f.weights) {
    std::string hf = HfName(name);
    if (!o.model_prefix) hf = hf.substr(6);
    std::vector<int64_t> shape = ShapeOf(f.hp, name);
    if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
    tensors.push_back(MakeSafeTensor(hf, shape, values, o.dtype));
  }
  // The tied output projection, as transformers saves it.
  tensors.push_back(MakeSafeTensor("proj_out.weight", ShapeOf(f.hp, "decoder.token_embedding.weight"),
                                   f.weights.at("decoder.token_embedding.weight"), o.dtype));
  if (!o.sharded) {
    ASSERT_TRUE(WriteSafeTensors(dir + "/model.safetensors", tensors).ok());
    return;
  }
  std::vector<SafeTensorToWrite> first(tensors.begin(), tensors.begin() + tensors.size() / 2),
      second(tensors.begin() + tensors.size() / 2, tensors.end());
  Json weight_map = Json::object();
  for (const auto& t : first) weight_map[t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : second) weight_map[t.name] = "model-00002-of-00002.safetensors";
  ASSERT_TRUE(WriteSafeTensors(dir + "/model-00001-of-00002.safetensors", first).ok());
  ASSERT_TRUE(WriteSafeTensors(dir + "/model-00002-of-00002.safetensors", second).ok());
  WriteJson(dir + "/model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}});
}

// Float values of an imported tensor (F32 or F16).
inline std::vector<float> ImportedValues(const TensorData& t) {
  std::vector<float> v;
  if (t.dtype == DType::F32) {
    v.resize(t.data.size() / 4);
    std::memcpy(v.data(), t.data.data(), t.data.size());
  } else if (t.dtype == DType::F16) {
    for (size_t i = 0; i + 1 < t.data.size(); i += 2) {
      uint16_t h;
      std::memcpy(&h, &t.data[i], 2);
      v.push_back(F16ToF32(h));
    }
  }
  return v;
}

inline const TensorData* FindTensor(const ImportedModel& m, const std::string& name) {
  for (const TensorData& t : m.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace importtest
}  // namespace earshot
