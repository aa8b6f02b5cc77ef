// earshot inspect M.earshot [--json]: what a model file holds.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "model/model.h"

namespace earshot::cli {
namespace {

using Json = nlohmann::ordered_json;  // keeps fields in the order they are described

constexpr char kUsage[] =
    "usage: earshot inspect M.earshot [--json]\n"
    "\n"
    "Verifies a model file and prints its schema version, hyper-parameters, mel settings, special tokens,\n"
    "vocabulary, model card, quantization report and tensor table with totals per dtype.\n"
    "options:\n"
    "  --json       machine-readable output\n"
    "  -h, --help   this text\n";

const char* TokenizerName(TokenizerKind k) { return k == TokenizerKind::SentencePiece ? "sentencepiece" : "bytelevel"; }

// Token bytes shown safely: printable ASCII as is, anything else as \xNN.
std::string Printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string TokenText(const ModelMeta& m, int id) {
  if (id < 0 || id >= static_cast<int>(m.vocab.tokens.size())) return "";
  return m.vocab.tokens[id];
}

struct Totals {
  int count = 0;
  uint64_t bytes = 0;
  int64_t params = 0;
};

Json Describe(const Model& model, const std::string& path) {
  const ModelMeta& m = model.meta();
  const HyperParams& hp = m.hparams;
  Json j;
  j["file"] = path;
  j["file_bytes"] = model.file_bytes();
  j["schema_version"] = std::to_string(m.schema_major) + "." + std::to_string(m.schema_minor);
  j["hparams"] = {{"n_mels", hp.n_mels},
                  {"n_audio_ctx", hp.n_audio_ctx},
                  {"n_audio_state", hp.n_audio_state},
                  {"n_audio_head", hp.n_audio_head},
                  {"n_audio_layer", hp.n_audio_layer},
                  {"n_text_ctx", hp.n_text_ctx},
                  {"n_text_state", hp.n_text_state},
                  {"n_text_head", hp.n_text_head},
                  {"n_text_layer", hp.n_text_layer},
                  {"n_vocab", hp.n_vocab},
                  {"variable_length_audio", hp.variable_length_audio},
                  {"conv1_stride", hp.conv1_stride},
                  {"edge_silence_ms", hp.edge_silence_ms}};
  j["mel"] = {
      {"sample_rate", m.mel.sample_rate},     {"n_fft", m.mel.n_fft},
      {"hop_length", m.mel.hop_length},       {"n_mels", m.mel.n_mels},
      {"chunk_seconds", m.mel.chunk_seconds}, {"filters", m.mel.filters.empty() ? "computed (Slaney)" : "stored"}};
  const SpecialTokens& s = m.special;
  Json special = Json::object();
  const std::pair<const char*, int> ids[] = {{"sot", s.sot},
                                             {"eot", s.eot},
                                             {"sot_prev", s.sot_prev},
                                             {"sot_lm", s.sot_lm},
                                             {"no_speech", s.no_speech},
                                             {"no_timestamps", s.no_timestamps},
                                             {"timestamp_begin", s.timestamp_begin},
                                             {"transcribe", s.transcribe},
                                             {"translate", s.translate}};
  for (const auto& [name, id] : ids) {
    special[name] = id < 0 ? Json(nullptr) : Json{{"id", id}, {"text", TokenText(m, id)}};
  }
  Json languages = Json::array();
  for (const Language& l : s.languages) languages.push_back({{"code", l.code}, {"token", l.token}});
  special["languages"] = languages;
  special["suppress_tokens"] = s.suppress_tokens;
  special["begin_suppress_tokens"] = s.begin_suppress_tokens;
  special["default_prompt"] = s.default_prompt;
  j["special_tokens"] = special;
  j["vocabulary"] = {
      {"kind", TokenizerName(m.vocab.kind)}, {"size", m.vocab.tokens.size()}, {"special", m.vocab.special_ids.size()}};
  Json heads = Json::array();
  for (const AlignmentHead& h : m.alignment_heads) heads.push_back({h.layer, h.head});
  j["alignment_heads"] = heads;

  const ModelCard& c = m.card;
  Json wer = Json::array();
  for (const WerEntry& w : c.wer) {
    wer.push_back({{"test_set", w.test_set}, {"decoding", w.decoding}, {"wer", w.wer}, {"words", w.words}});
  }
  j["card"] = {{"name", c.name},
               {"version", c.version},
               {"description", c.description},
               {"languages", c.languages},
               {"license", c.license},
               {"training_data", c.training_data},
               {"wer", wer}};
  if (!c.extra_json.empty()) {
    Json extra = Json::parse(c.extra_json, nullptr, /*allow_exceptions=*/false);
    j["card"]["extra"] = extra.is_discarded() ? Json(c.extra_json) : extra;
  }

  const QuantReport& q = m.quant;
  if (!q.method.empty() || !q.layers.empty()) {
    Json layers = Json::array();
    for (const LayerPrecision& l : q.layers) {
      layers.push_back({{"tensor", l.tensor},
                        {"dtype", DTypeName(l.dtype)},
                        {"group_size", l.group_size},
                        {"bytes", l.bytes},
                        {"predicted_divergence", l.predicted_divergence}});
    }
    j["quant"] = {{"method", q.method},
                  {"budget_bytes", q.budget_bytes},
                  {"total_bytes", q.total_bytes},
                  {"average_bits", q.average_bits},
                  {"measured_divergence", q.measured_divergence},
                  {"layers", layers}};
  } else {
    j["quant"] = nullptr;
  }

  Json tensors = Json::array();
  std::map<std::string, Totals> by_dtype;
  Totals all;
  for (const TensorRef& t : model.tensors()) {
    Json e = {
        {"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"bytes", t.nbytes + t.scales_nbytes}};
    if (t.group_size) e["group_size"] = t.group_size;
    if (t.layout == TensorLayout::PackedTiles) e["packed"] = {t.pack_rows, t.pack_cols};
    tensors.push_back(e);
    for (Totals* tot : {&by_dtype[DTypeName(t.dtype)], &all}) {
      tot->count += 1;
      tot->bytes += t.nbytes + t.scales_nbytes;
      tot->params += t.numel();
    }
  }
  j["tensors"] = tensors;
  Json totals = Json::object();
  for (const auto& [dtype, t] : by_dtype)
    totals[dtype] = {{"tensors", t.count}, {"bytes", t.bytes}, {"params", t.params}};
  totals["all"] = {{"tensors", all.count}, {"bytes", all.bytes}, {"params", all.params}};
  j["totals"] = totals;
  return j;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / 1048576.0);
  return buf;
}

void PrintText(const Model& model, const Json& j) {
  const ModelMeta& m = model.meta();
  std::printf("file:        %s (%s)\n", j["file"].get<std::string>().c_str(), Mib(model.file_bytes()).c_str());
  std::printf("schema:      %s\n", j["schema_version"].get<std::string>().c_str());
  const ModelCard& c = m.card;
  std::printf("name:        %s%s%s\n", c.name.c_str(), c.version.empty() ? "" : " ", c.version.c_str());
  if (!c.description.empty()) std::printf("description: %s\n", c.description.c_str());
  if (!c.languages.empty()) {
    std::string langs;
    for (const std::string& l : c.languages) langs += (langs.empty() ? "" : ", ") + l;
    std::printf("languages:   %s\n", langs.c_str());
  }
  if (!c.license.empty()) std::printf("license:     %s\n", c.license.c_str());
  if (!c.training_data.empty()) std::printf("training:    %s\n", c.training_data.c_str());
  for (const WerEntry& w : c.wer) {
    std::printf("WER:         %-24s %-8s %6.2f%%  (%d words)\n", w.test_set.c_str(), w.decoding.c_str(), w.wer,
                w.words);
  }
  if (!c.extra_json.empty()) std::printf("extra:       %s\n", c.extra_json.c_str());

  const HyperParams& hp = m.hparams;
  std::printf("\nhyper-parameters:\n");
  std::printf("  audio: n_mels %d, n_audio_ctx %d, n_audio_state %d, n_audio_head %d, n_audio_layer %d, %d mel frames "
              "per position%s\n",
              hp.n_mels, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head, hp.n_audio_layer, hp.frames_per_position(),
              hp.variable_length_audio ? ", variable-length audio" : ", fixed 30-s windows");
  if (hp.edge_silence_ms > 0) std::printf("  %d ms of silence added before and after each window\n", hp.edge_silence_ms);
  std::printf("  text:  n_text_ctx %d, n_text_state %d, n_text_head %d, n_text_layer %d, n_vocab %d\n", hp.n_text_ctx,
              hp.n_text_state, hp.n_text_head, hp.n_text_layer, hp.n_vocab);
  std::printf("mel:         %d Hz, n_fft %d, hop %d, %d mels, %d-s chunks, filters %s\n", m.mel.sample_rate,
              m.mel.n_fft, m.mel.hop_length, m.mel.n_mels, m.mel.chunk_seconds,
              m.mel.filters.empty() ? "computed (Slaney)" : "stored");
  std::printf("vocabulary:  %s, %zu tokens, %zu control tokens\n", TokenizerName(m.vocab.kind), m.vocab.tokens.size(),
              m.vocab.special_ids.size());

  std::printf("\nspecial tokens:\n");
  for (auto it = j["special_tokens"].begin(); it != j["special_tokens"].end(); ++it) {
    if (it->is_object()) {
      std::printf("  %-16s %7d  \"%s\"\n", it.key().c_str(), (*it)["id"].get<int>(),
                  Printable((*it)["text"].get<std::string>()).c_str());
    } else if (it->is_null()) {
      std::printf("  %-16s    none\n", it.key().c_str());
    }
  }
  const SpecialTokens& s = m.special;
  if (!s.languages.empty()) {
    std::string langs;
    for (size_t i = 0; i < s.languages.size(); ++i) {
      if (i == 12) {
        langs += ", ...";
        break;
      }
      langs += (i ? ", " : "") + s.languages[i].code + "=" + std::to_string(s.languages[i].token);
    }
    std::printf("  languages        %zu (%s)\n", s.languages.size(), langs.c_str());
  }
  const auto list = [](const std::vector<int>& ids) {
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i == 16) {
        out += ", ... " + std::to_string(ids.size()) + " in all";
        break;
      }
      out += (i ? ", " : "") + std::to_string(ids[i]);
    }
    return out + "]";
  };
  std::printf("  suppress         %s\n", list(s.suppress_tokens).c_str());
  std::printf("  begin suppress   %s\n", list(s.begin_suppress_tokens).c_str());
  std::printf("  default prompt   %s\n", list(s.default_prompt).c_str());
  if (!m.alignment_heads.empty()) {
    std::string heads;
    for (const AlignmentHead& h : m.alignment_heads) {
      heads += (heads.empty() ? "" : " ") + std::to_string(h.layer) + ":" + std::to_string(h.head);
    }
    std::printf("  alignment heads  %s (layer:head)\n", heads.c_str());
  }

  const QuantReport& q = m.quant;
  if (!q.method.empty() || !q.layers.empty()) {
    std::printf("\nquantization: %s, %s of %s budget, %.2f bits on average, measured divergence %g\n", q.method.c_str(),
                Mib(q.total_bytes).c_str(), Mib(q.budget_bytes).c_str(), q.average_bits, q.measured_divergence);
    for (const LayerPrecision& l : q.layers) {
      std::printf("  %-44s %-4s g%-4d %10lld bytes  predicted %g\n", l.tensor.c_str(), DTypeName(l.dtype), l.group_size,
                  static_cast<long long>(l.bytes), l.predicted_divergence);
    }
  }

  std::printf("\ntensors:\n  %-44s %-5s %-18s %12s\n", "name", "dtype", "shape", "bytes");
  for (const TensorRef& t : model.tensors()) {
    std::string dtype = DTypeName(t.dtype);
    if (t.group_size) dtype += "/g" + std::to_string(t.group_size);
    if (t.layout == TensorLayout::PackedTiles) dtype += " packed";
    std::printf("  %-44s %-5s %-18s %12zu\n", t.name.c_str(), dtype.c_str(), ShapeToString(t.shape).c_str(),
                t.nbytes + t.scales_nbytes);
  }
  std::printf("\ntotals:\n");
  for (auto it = j["totals"].begin(); it != j["totals"].end(); ++it) {
    const uint64_t bytes = (*it)["bytes"].get<uint64_t>();
    std::printf("  %-4s %4d tensors %14lld params %14llu bytes (%s)\n", it.key().c_str(), (*it)["tensors"].get<int>(),
                static_cast<long long>((*it)["params"].get<int64_t>()), static_cast<unsigned long long>(bytes),
                Mib(bytes).c_str());
  }
}

}  // namespace

int RunInspect(int argc, char** argv) {
  std::string path;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--json") {
      json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "earshot inspect: unknown option '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    } else if (path.empty()) {
      path = arg;
    } else {
      std::fprintf(stderr, "earshot inspect: unexpected argument '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "earshot inspect: missing the model file\n\n%s", kUsage);
    return 2;
  }
  auto model = Model::FromFile(path);
  if (!model.ok()) {
    std::fprintf(stderr, "earshot inspect: %s\n", model.status().message().c_str());
    return 1;
  }
  const Json j = Describe(**model, path);
  if (json) {
    // Token texts are raw bytes and may not be valid UTF-8: replace rather than fail.
    std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    PrintText(**model, j);
  }
  return 0;
}

}  // namespace earshot::cli
