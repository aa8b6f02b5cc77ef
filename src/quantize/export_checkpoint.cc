// .earshot -> float checkpoint folder (the format ImportCheckpoint reads): the way back from a shipped file to
// weights that training or another tool can start from.
#include <filesystem>
#include <fstream>
#include <system_error>

#include "kernels/qgemm.h"
#include "model/whisper_weights.h"
#include "quantize/import_util.h"
#include "quantize/importers.h"
#include "quantize/safetensors.h"
#include "quantize/tokenizer_import.h"

namespace earshot {
namespace {

Json DimsJson(const HyperParams& hp) {
  return Json{{"n_mels", hp.n_mels},           {"n_audio_ctx", hp.n_audio_ctx},
              {"n_audio_state", hp.n_audio_state}, {"n_audio_head", hp.n_audio_head},
              {"n_audio_layer", hp.n_audio_layer}, {"n_text_ctx", hp.n_text_ctx},
              {"n_text_state", hp.n_text_state},   {"n_text_head", hp.n_text_head},
              {"n_text_layer", hp.n_text_layer},   {"n_vocab", hp.n_vocab},
              {"conv1_stride", hp.conv1_stride}};
}

Json SpecialTokensJson(const SpecialTokens& s) {
  Json out = Json::object();
  const std::pair<const char*, int> ids[] = {
      {"sot", s.sot},         {"eot", s.eot},
      {"sot_prev", s.sot_prev}, {"sot_lm", s.sot_lm},
      {"no_speech", s.no_speech}, {"no_timestamps", s.no_timestamps},
      {"timestamp_begin", s.timestamp_begin}, {"transcribe", s.transcribe},
      {"translate", s.translate}};
  for (const auto& [key, id] : ids) {
    if (id >= 0) out[key] = id;
  }
  return out;
}

Expected<Json> CardJson(const ModelCard& card) {
  Json out{{"name", card.name},       {"version", card.version},
           {"description", card.description}, {"license", card.license},
           {"training_data", card.training_data}, {"languages", card.languages}};
  Json wer = Json::array();
  for (const WerEntry& w : card.wer) {
    wer.push_back({{"test_set", w.test_set}, {"decoding", w.decoding}, {"words", w.words}, {"wer", w.wer}});
  }
  out["wer"] = wer;
  if (!card.extra_json.empty()) {
    try {
      out["extra"] = Json::parse(card.extra_json);
    } catch (const std::exception&) {
      return Status::Error("the model card's extra field is not JSON");
    }
  }
  return out;
}

Expected<Json> ConfigJson(const ModelMeta& meta) {
  const HyperParams& hp = meta.hparams;
  Json config{{"format", "earshot-checkpoint"},
              {"format_version", 1},
              {"dims", DimsJson(hp)},
              {"variable_length_audio", hp.variable_length_audio},
              {"edge_silence_ms", hp.edge_silence_ms},
              {"mel",
               {{"sample_rate", meta.mel.sample_rate},
                {"n_fft", meta.mel.n_fft},
                {"hop_length", meta.mel.hop_length},
                {"n_mels", meta.mel.n_mels},
                {"chunk_seconds", meta.mel.chunk_seconds}}},
              {"special_tokens", SpecialTokensJson(meta.special)},
              {"suppress_tokens", meta.special.suppress_tokens},
              {"begin_suppress_tokens", meta.special.begin_suppress_tokens},
              {"default_prompt", meta.special.default_prompt}};
  if (!meta.special.languages.empty()) {
    Json langs = Json::array();
    for (const Language& l : meta.special.languages) langs.push_back({{"code", l.code}, {"token", l.token}});
    config["languages"] = langs;
  }
  if (!meta.alignment_heads.empty()) {
    Json heads = Json::array();
    for (const AlignmentHead& h : meta.alignment_heads) heads.push_back({h.layer, h.head});
    config["alignment_heads"] = heads;
  }
  EARSHOT_ASSIGN_OR_RETURN(config["card"], CardJson(meta.card));
  return config;
}

// First id of SentencePiece's byte-fallback block (256 consecutive tokens printing bytes 0x00..0xFF), or -1. Its
// printable bytes also exist as ordinary pieces ("a" and "<0x61>"); the block keeps the <0xNN> spelling, so a
// SentencePiece model can be rebuilt from the pieces.
int ByteFallbackStart(const Vocabulary& vocab, const std::vector<bool>& special) {
  const int n = static_cast<int>(vocab.tokens.size());
  for (int start = 0; start + 256 <= n; ++start) {
    int b = 0;
    while (b < 256 && !special[start + b] && vocab.tokens[start + b] == std::string(1, static_cast<char>(b))) ++b;
    if (b == 256) return start;
  }
  return -1;
}

Json TokenizerJson(const Vocabulary& vocab) {
  const bool sentencepiece = vocab.kind == TokenizerKind::SentencePiece;
  std::vector<bool> special(vocab.tokens.size(), false);
  for (int id : vocab.special_ids) special[id] = true;
  const int byte_start = sentencepiece ? ByteFallbackStart(vocab, special) : -1;
  Json pieces = Json::array();
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const std::string& t = vocab.tokens[i];
    const int id = static_cast<int>(i);
    if (special[i]) {
      pieces.push_back(t);
    } else if (!sentencepiece) {
      pieces.push_back(BytesToByteLevel(t));
    } else if (byte_start >= 0 && id >= byte_start && id < byte_start + 256) {
      pieces.push_back(ByteFallbackPiece(static_cast<unsigned char>(id - byte_start)));
    } else {
      pieces.push_back(BytesToSentencePiece(t));
    }
  }
  return Json{{"kind", sentencepiece ? "sentencepiece" : "bytelevel"},
              {"pieces", pieces},
              {"special_ids", vocab.special_ids}};
}

// Token bytes are arbitrary; JSON text must be UTF-8, so invalid sequences are written as the replacement
// character rather than aborting the dump.
Status WriteJson(const Json& value, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Error("cannot write '" + path + "'");
  out << value.dump(1, ' ', false, Json::error_handler_t::replace) << "\n";
  out.close();
  if (!out) return Status::Error("cannot write '" + path + "'");
  return Status::Ok();
}

// Every value of a tensor as f32; quantized ones dequantized (value * scale), repacked first when the file stores
// them in the plain order.
Expected<std::vector<float>> TensorValues(const TensorRef& t) {
  const int64_t rows = t.shape.size() > 1 ? t.shape[0] : 1;
  const int64_t cols = t.numel() / rows;
  std::vector<float> values(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::F32 || t.dtype == DType::F16) {
    for (int64_t r = 0; r < rows; ++r) ReadTensorRow(t, r, values.data() + r * cols);
    return values;
  }
  TensorRef packed = t;
  AlignedBuffer storage;
  if (t.layout == TensorLayout::Plain) {
    EARSHOT_ASSIGN_OR_RETURN(packed, RepackQuantizedTensor(t, &storage));
  }
  EARSHOT_ASSIGN_OR_RETURN(QWeights q, QWeightsFromTensor(packed, static_cast<int>(rows), static_cast<int>(cols)));
  for (int64_t r = 0; r < rows; ++r) DequantizeQRow(q, static_cast<int>(r), values.data() + r * cols);
  return values;
}

}  // namespace

Status ExportCheckpoint(const Model& model, const std::string& dir) {
  const ModelMeta& meta = model.meta();
  if (!meta.mel.filters.empty()) {
    return Status::Error("this model carries its own mel filter bank, which a checkpoint folder cannot hold");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (!IsDirectory(dir)) {
    return Status::Error(FileExists(dir) ? "'" + dir + "' is not a directory"
                                         : "cannot create '" + dir + "': " + error.message());
  }

  std::vector<SafeTensorToWrite> tensors;
  for (const TensorRef& t : model.tensors()) {
    EARSHOT_ASSIGN_OR_RETURN(std::vector<float> values, TensorValues(t));
    tensors.push_back(MakeSafeTensor(t.name, t.shape, values, "F32"));
  }
  EARSHOT_RETURN_IF_ERROR(WriteSafeTensors(JoinPath(dir, "model.safetensors"), tensors, {{"format", "pt"}}));
  EARSHOT_ASSIGN_OR_RETURN(Json config, ConfigJson(meta));
  EARSHOT_RETURN_IF_ERROR(WriteJson(config, JoinPath(dir, "config.json")));
  return WriteJson(TokenizerJson(meta.vocab), JoinPath(dir, "tokenizer.json"));
}

}  // namespace earshot
