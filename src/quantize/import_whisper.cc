// Hugging Face Whisper folders (transformers' WhisperForConditionalGeneration saved with safetensors).
#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "quantize/import_util.h"
#include "quantize/importers.h"
#include "quantize/tokenizer_import.h"

namespace earshot {
namespace {

// Whisper's timestamp tokens <|0.00|> .. <|30.00|>, 0.02 s apart.
constexpr int kTimestampTokens = 1501;

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// "self_attn.q_proj.weight" -> "attn.query.weight" (the part of a layer's parameter name after "layers.N.").
Expected<std::string> CanonicalLayerPart(const std::string& part, bool decoder) {
  static const std::pair<const char*, const char*> kModules[] = {
      {"self_attn.q_proj", "attn.query"},
      {"self_attn.k_proj", "attn.key"},
      {"self_attn.v_proj", "attn.value"},
      {"self_attn.out_proj", "attn.out"},
      {"self_attn_layer_norm", "attn_ln"},
      {"encoder_attn.q_proj", "cross_attn.query"},
      {"encoder_attn.k_proj", "cross_attn.key"},
      {"encoder_attn.v_proj", "cross_attn.value"},
      {"encoder_attn.out_proj", "cross_attn.out"},
      {"encoder_attn_layer_norm", "cross_attn_ln"},
      {"fc1", "mlp.0"},
      {"fc2", "mlp.2"},
      {"final_layer_norm", "mlp_ln"},
  };
  for (const auto& [hf, canonical] : kModules) {
    const std::string prefix = std::string(hf) + ".";
    if (!StartsWith(part, prefix)) continue;
    const std::string param = part.substr(prefix.size());
    if (param != "weight" && param != "bias") break;
    if (!decoder && StartsWith(hf, "encoder_attn")) break;
    return std::string(canonical) + "." + param;
  }
  return Status::Error("unknown parameter");
}

}  // namespace

Expected<std::string> CanonicalWhisperName(const std::string& hf_name) {
  std::string n = StartsWith(hf_name, "model.") ? hf_name.substr(6) : hf_name;
  const auto unknown = [&] {
    return Status::Error("unknown tensor '" + hf_name + "' (not a Whisper parameter this importer knows)");
  };
  if (n == "proj_out.weight") return std::string();
  static const std::pair<const char*, const char*> kFixed[] = {
      {"encoder.conv1.weight", "encoder.conv1.weight"},
      {"encoder.conv1.bias", "encoder.conv1.bias"},
      {"encoder.conv2.weight", "encoder.conv2.weight"},
      {"encoder.conv2.bias", "encoder.conv2.bias"},
      {"encoder.embed_positions.weight", "encoder.positional_embedding"},
      {"encoder.layer_norm.weight", "encoder.ln_post.weight"},
      {"encoder.layer_norm.bias", "encoder.ln_post.bias"},
      {"decoder.embed_tokens.weight", "decoder.token_embedding.weight"},
      {"decoder.embed_positions.weight", "decoder.positional_embedding"},
      {"decoder.layer_norm.weight", "decoder.ln.weight"},
      {"decoder.layer_norm.bias", "decoder.ln.bias"},
  };
  for (const auto& [hf, canonical] : kFixed) {
    if (n == hf) return std::string(canonical);
  }
  for (const char* stack : {"encoder", "decoder"}) {
    const std::string prefix = std::string(stack) + ".layers.";
    if (!StartsWith(n, prefix)) continue;
    size_t i = prefix.size(), j = i;
    while (j < n.size() && j - i < 4 && n[j] >= '0' && n[j] <= '9') ++j;
    if (j == i || j >= n.size() || n[j] != '.' || (n[i] == '0' && j - i > 1)) return unknown();
    auto part = CanonicalLayerPart(n.substr(j + 1), std::string(stack) == "decoder");
    if (!part.ok()) return unknown();
    return std::string(stack) + ".blocks." + n.substr(i, j - i) + "." + *part;
  }
  return unknown();
}

namespace {

struct HfVocabulary {
  std::vector<std::string> text;               // raw token text (byte-level for regular tokens)
  std::vector<bool> listed;                    // present in the folder's tokenizer files
  std::vector<bool> added;                     // an added (special) token: its text is literal, not byte-level
  std::unordered_map<std::string, int> id_of;  // literal text of added tokens and raw text of regular ones
  std::string source;                          // the file(s) it came from, for messages
};

Status SetToken(HfVocabulary* v, int64_t id, const std::string& text, bool added, const std::string& where) {
  if (id < 0 || id >= static_cast<int64_t>(v->text.size())) {
    return Status::Error(where + ": token '" + text + "' has id " + std::to_string(id) + ", outside vocab_size " +
                         std::to_string(v->text.size()) + " from config.json");
  }
  v->text[id] = text;
  v->listed[id] = true;
  v->added[id] = added;
  v->id_of[text] = static_cast<int>(id);
  return Status::Ok();
}

Status AddTokenMap(const Json& map, bool added, const std::string& where, HfVocabulary* v) {
  if (!map.is_object()) return Status::Error(where + ": expected an object of token -> id");
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->is_number_integer()) return Status::Error(where + ": the id of '" + it.key() + "' is not an integer");
    EARSHOT_RETURN_IF_ERROR(SetToken(v, it->get<int64_t>(), it.key(), added, where));
  }
  return Status::Ok();
}

Expected<HfVocabulary> LoadHfVocabulary(const std::string& dir, int vocab_size) {
  HfVocabulary v;
  v.text.assign(vocab_size, std::string());
  v.listed.assign(vocab_size, false);
  v.added.assign(vocab_size, false);
  const std::string vocab_json = JoinPath(dir, "vocab.json");
  const std::string tokenizer_json = JoinPath(dir, "tokenizer.json");
  if (FileExists(vocab_json)) {
    v.source = "vocab.json";
    EARSHOT_ASSIGN_OR_RETURN(Json vocab, ReadJsonFile(vocab_json));
    EARSHOT_RETURN_IF_ERROR(AddTokenMap(vocab, false, "'" + vocab_json + "'", &v));
    const std::string added_json = JoinPath(dir, "added_tokens.json");
    if (FileExists(added_json)) {
      v.source += " + added_tokens.json";
      EARSHOT_ASSIGN_OR_RETURN(Json added, ReadJsonFile(added_json));
      EARSHOT_RETURN_IF_ERROR(AddTokenMap(added, true, "'" + added_json + "'", &v));
    }
  } else if (FileExists(tokenizer_json)) {
    v.source = "tokenizer.json";
    EARSHOT_ASSIGN_OR_RETURN(Json tok, ReadJsonFile(tokenizer_json));
    const std::string where = "'" + tokenizer_json + "'";
    if (!tok.is_object() || !tok.contains("model") || !tok["model"].is_object() || !tok["model"].contains("vocab")) {
      return Status::Error(where + ": no model.vocab");
    }
    EARSHOT_RETURN_IF_ERROR(AddTokenMap(tok["model"]["vocab"], false, where, &v));
    if (tok.contains("added_tokens") && !tok["added_tokens"].is_null()) {
      const Json& added = tok["added_tokens"];
      if (!added.is_array()) return Status::Error(where + ": added_tokens is not a list");
      for (const Json& a : added) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
            !a["content"].is_string()) {
          return Status::Error(where + ": added token " + a.dump() + " lacks an integer id or a content string");
        }
        EARSHOT_RETURN_IF_ERROR(SetToken(&v, a["id"].get<int64_t>(), a["content"].get<std::string>(), true, where));
      }
    }
  } else {
    return Status::Error("'" + dir + "' has neither vocab.json nor tokenizer.json");
  }
  // Tokens that special_tokens_map.json declares special are control tokens spelled literally.
  const std::string map_path = JoinPath(dir, "special_tokens_map.json");
  if (FileExists(map_path)) {
    EARSHOT_ASSIGN_OR_RETURN(Json map, ReadJsonFile(map_path));
    if (!map.is_object()) return Status::Error("'" + map_path + "' is not a JSON object");
    const auto mark = [&v](const Json& entry) {
      const Json* text = entry.is_object() && entry.contains("content") ? &entry["content"] : &entry;
      if (!text->is_string()) return;
      auto it = v.id_of.find(text->get<std::string>());
      if (it != v.id_of.end()) v.added[it->second] = true;
    };
    for (const Json& value : map) {
      if (value.is_array()) {
        for (const Json& e : value) mark(e);
      } else {
        mark(value);
      }
    }
  }
  return v;
}

int FindToken(const HfVocabulary& v, const std::string& text) {
  auto it = v.id_of.find(text);
  return it == v.id_of.end() ? -1 : it->second;
}

std::string TimestampText(int k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "<|%.2f|>", k * 0.02);
  return buf;
}

// <|xx|> or <|xxx|> with lowercase letters: Whisper's language tokens.
bool IsLanguageToken(const std::string& t, std::string* code) {
  if (t.size() < 6 || t.size() > 7 || !StartsWith(t, "<|") || t.compare(t.size() - 2, 2, "|>") != 0) return false;
  const std::string inner = t.substr(2, t.size() - 4);
  for (char c : inner) {
    if (c < 'a' || c > 'z') return false;
  }
  *code = inner;
  return true;
}

struct WhisperConfig {
  HyperParams hp;
  std::string name;
};

Status ReadWhisperConfig(const Json& config, const std::string& where, WhisperConfig* out) {
  if (!config.is_object()) return Status::Error(where + ": not a JSON object");
  JsonFields f(config, where);
  std::string model_type;
  EARSHOT_RETURN_IF_ERROR(f.String("model_type", &model_type));
  if (!model_type.empty() && model_type != "whisper") {
    return Status::Error(where + ": model_type is \"" + model_type + "\", not \"whisper\"");
  }
  HyperParams& hp = out->hp;
  int d_model = 0, encoder_ffn = 0, decoder_ffn = -1;
  EARSHOT_RETURN_IF_ERROR(f.Int("d_model", &d_model, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("encoder_layers", &hp.n_audio_layer, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("encoder_attention_heads", &hp.n_audio_head, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("decoder_layers", &hp.n_text_layer, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("decoder_attention_heads", &hp.n_text_head, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("num_mel_bins", &hp.n_mels, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("max_source_positions", &hp.n_audio_ctx, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("max_target_positions", &hp.n_text_ctx, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("vocab_size", &hp.n_vocab, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("encoder_ffn_dim", &encoder_ffn, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("decoder_ffn_dim", &decoder_ffn, false));
  hp.n_audio_state = hp.n_text_state = d_model;
  hp.variable_length_audio = false;  // Whisper is trained on padded 30-s windows
  if (static_cast<int64_t>(encoder_ffn) != 4 * static_cast<int64_t>(d_model) ||
      (decoder_ffn != -1 && static_cast<int64_t>(decoder_ffn) != 4 * static_cast<int64_t>(d_model))) {
    return Status::Error(where + ": feed-forward width must be 4 x d_model (" + std::to_string(4 * int64_t{d_model}) +
                         "); this checkpoint has " + std::to_string(encoder_ffn) + "/" + std::to_string(decoder_ffn));
  }
  std::string activation;
  EARSHOT_RETURN_IF_ERROR(f.String("activation_function", &activation));
  if (!activation.empty() && activation != "gelu") {
    return Status::Error(where + ": activation_function \"" + activation + "\" is not supported (only \"gelu\")");
  }
  bool scale_embedding = false;
  EARSHOT_RETURN_IF_ERROR(f.Bool("scale_embedding", &scale_embedding));
  if (scale_embedding) return Status::Error(where + ": scale_embedding = true is not supported");
  EARSHOT_RETURN_IF_ERROR(f.String("_name_or_path", &out->name));
  return ValidateHyperParams(hp).With(where);
}

// preprocessor_config.json (feature extractor settings), when present.
Status ReadPreprocessor(const std::string& dir, const HyperParams& hp, MelSettings* mel) {
  mel->n_mels = hp.n_mels;
  const std::string path = JoinPath(dir, "preprocessor_config.json");
  if (!FileExists(path)) return Status::Ok();
  EARSHOT_ASSIGN_OR_RETURN(Json pre, ReadJsonFile(path));
  JsonFields f(pre, "'" + path + "'");
  int feature_size = hp.n_mels;
  EARSHOT_RETURN_IF_ERROR(f.Int("feature_size", &feature_size, false));
  if (feature_size != hp.n_mels) {
    return Status::Error(f.where() + ": feature_size " + std::to_string(feature_size) + " differs from num_mel_bins " +
                         std::to_string(hp.n_mels));
  }
  EARSHOT_RETURN_IF_ERROR(f.Int("sampling_rate", &mel->sample_rate, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("hop_length", &mel->hop_length, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("n_fft", &mel->n_fft, false));
  return f.Int("chunk_length", &mel->chunk_seconds, false);
}

// The tied output projection: proj_out.weight must equal the token embedding.
Status CheckTiedProjection(const SourceTensor& proj, const std::map<std::string, SourceTensor>& canonical) {
  auto embed = canonical.find("decoder.token_embedding.weight");
  if (embed == canonical.end()) return Status::Ok();  // reported as missing later
  if (proj.shape != embed->second.shape) {
    return Status::Error("'" + proj.source_name + "' has shape " + ShapeToString(proj.shape) +
                         ", unlike the token embedding: untied output projections are not supported");
  }
  EARSHOT_ASSIGN_OR_RETURN(std::vector<float> a, proj.read());
  EARSHOT_ASSIGN_OR_RETURN(std::vector<float> b, embed->second.read());
  if (a != b) {
    return Status::Error("'" + proj.source_name +
                         "' differs from the token embedding: untied output projections are not supported");
  }
  return Status::Ok();
}

// Special tokens, languages and generated names for unlisted ids.
Status ResolveTokens(HfVocabulary* v, const Json& generation, const Json& config, bool multilingual, ModelMeta* meta,
                     std::vector<std::string>* notes) {
  SpecialTokens& s = meta->special;
  s.eot = FindToken(*v, "<|endoftext|>");
  s.sot = FindToken(*v, "<|startoftranscript|>");
  s.translate = FindToken(*v, "<|translate|>");
  s.transcribe = FindToken(*v, "<|transcribe|>");
  s.sot_lm = FindToken(*v, "<|startoflm|>");
  s.sot_prev = FindToken(*v, "<|startofprev|>");
  s.no_speech = FindToken(*v, "<|nocaptions|>");
  if (s.no_speech < 0) s.no_speech = FindToken(*v, "<|nospeech|>");
  s.no_timestamps = FindToken(*v, "<|notimestamps|>");
  s.timestamp_begin = FindToken(*v, TimestampText(0));

  // Ids from the configuration fill in what the token files do not name, and must agree where both do.
  const auto from_config = [&](const char* key, int* id, const char* token) -> Status {
    int value = -1;
    for (const Json* src : {&generation, &config}) {
      const Json* field = JsonFields(*src, "").Get(key);
      // Some configurations list several ids here; only a single id says something definite.
      if (value < 0 && field && field->is_number_integer()) value = field->get<int>();
    }
    if (value < 0) return Status::Ok();
    if (*id >= 0 && *id != value) {
      return Status::Error(std::string(key) + " = " + std::to_string(value) + " disagrees with the tokenizer's " +
                           token + " = " + std::to_string(*id));
    }
    *id = value;
    return Status::Ok();
  };
  EARSHOT_RETURN_IF_ERROR(from_config("decoder_start_token_id", &s.sot, "<|startoftranscript|>"));
  EARSHOT_RETURN_IF_ERROR(from_config("eos_token_id", &s.eot, "<|endoftext|>"));
  EARSHOT_RETURN_IF_ERROR(from_config("no_timestamps_token_id", &s.no_timestamps, "<|notimestamps|>"));
  if (s.eot < 0) return Status::Error("the tokenizer (" + v->source + ") has no <|endoftext|> token");
  if (s.sot < 0) return Status::Error("the tokenizer (" + v->source + ") has no <|startoftranscript|> token");

  const int n_vocab = static_cast<int>(v->text.size());
  if (s.timestamp_begin < 0 && s.no_timestamps >= 0 && s.no_timestamps + 1 < n_vocab) {
    s.timestamp_begin = s.no_timestamps + 1;
    int generated = 0;
    for (int k = 0; k < kTimestampTokens && s.timestamp_begin + k < n_vocab; ++k) {
      const int id = s.timestamp_begin + k;
      if (v->listed[id]) continue;
      v->text[id] = TimestampText(k);
      v->listed[id] = v->added[id] = true;
      ++generated;
    }
    if (generated) notes->push_back("generated " + std::to_string(generated) + " timestamp token names");
  }
  int unnamed = 0;
  for (int id = 0; id < n_vocab; ++id) {
    if (v->listed[id]) continue;
    v->text[id] = "<|unused_" + std::to_string(id) + "|>";
    v->added[id] = true;
    ++unnamed;
  }
  if (unnamed) notes->push_back(std::to_string(unnamed) + " token ids had no text; named them <|unused_ID|>");

  if (multilingual) {
    const Json* lang_to_id = JsonFields(generation, "generation_config.json").Get("lang_to_id");
    if (lang_to_id && lang_to_id->is_object()) {
      for (auto it = lang_to_id->begin(); it != lang_to_id->end(); ++it) {
        std::string code;
        if (!IsLanguageToken(it.key(), &code) || !it->is_number_integer()) {
          return Status::Error("generation_config.json: lang_to_id entry '" + it.key() + "' is not <|xx|>: id");
        }
        s.languages.push_back({code, it->get<int>()});
      }
    } else {
      for (int id = 0; id < n_vocab; ++id) {
        std::string code;
        if (v->added[id] && IsLanguageToken(v->text[id], &code)) s.languages.push_back({code, id});
      }
    }
    std::sort(s.languages.begin(), s.languages.end(),
              [](const Language& a, const Language& b) { return a.token < b.token; });
    if (s.languages.empty()) notes->push_back("multilingual model without language tokens");
  }

  // Everything from <|endoftext|> on is a control token in Whisper's vocabulary, as is any added token.
  for (int id = 0; id < n_vocab; ++id) {
    if (id >= s.eot || v->added[id]) meta->vocab.special_ids.push_back(id);
  }
  meta->vocab.kind = TokenizerKind::ByteLevelBpe;
  meta->vocab.tokens.resize(n_vocab);
  for (int id = 0; id < n_vocab; ++id) {
    meta->vocab.tokens[id] = v->added[id] ? v->text[id] : ByteLevelToBytes(v->text[id]);
  }
  return Status::Ok();
}

Status ReadGenerationLists(const Json& generation, const Json& config, ModelMeta* meta) {
  SpecialTokens& s = meta->special;
  for (const Json* src : {&config, &generation}) {  // generation_config.json wins
    JsonFields f(*src, src == &config ? "config.json" : "generation_config.json");
    EARSHOT_RETURN_IF_ERROR(f.IntList("suppress_tokens", &s.suppress_tokens));
    EARSHOT_RETURN_IF_ERROR(f.IntList("begin_suppress_tokens", &s.begin_suppress_tokens));
  }
  const Json* heads = JsonFields(generation, "generation_config.json").Get("alignment_heads");
  if (heads) {
    if (!heads->is_array()) return Status::Error("generation_config.json: alignment_heads must be a list");
    for (const Json& h : *heads) {
      if (!h.is_array() || h.size() != 2 || !h[0].is_number_integer() || !h[1].is_number_integer()) {
        return Status::Error("generation_config.json: alignment head " + h.dump() + " is not [layer, head]");
      }
      meta->alignment_heads.push_back({h[0].get<int>(), h[1].get<int>()});
    }
  }
  return Status::Ok();
}

}  // namespace

Expected<ImportedModel> ImportWhisper(const std::string& dir, const ImportOptions& options) {
  if (!IsDirectory(dir)) return Status::Error("'" + dir + "' is not a directory");
  const std::string config_path = JoinPath(dir, "config.json");
  EARSHOT_ASSIGN_OR_RETURN(Json config, ReadJsonFile(config_path));
  WhisperConfig wc;
  EARSHOT_RETURN_IF_ERROR(ReadWhisperConfig(config, "'" + config_path + "'", &wc));
  EARSHOT_RETURN_IF_ERROR(CheckModelFits(wc.hp, options));

  Json generation = Json::object();
  const std::string generation_path = JoinPath(dir, "generation_config.json");
  if (FileExists(generation_path)) {
    EARSHOT_ASSIGN_OR_RETURN(generation, ReadJsonFile(generation_path));
    if (!generation.is_object()) return Status::Error("'" + generation_path + "' is not a JSON object");
  }

  ImportedModel model;
  ModelMeta& meta = model.meta;
  meta.hparams = wc.hp;
  EARSHOT_RETURN_IF_ERROR(ReadPreprocessor(dir, wc.hp, &meta.mel));

  bool multilingual = wc.hp.n_vocab >= 51865;  // Whisper: 51864 English-only, 51865/51866 multilingual
  EARSHOT_RETURN_IF_ERROR(JsonFields(generation, "'" + generation_path + "'").Bool("is_multilingual", &multilingual));

  EARSHOT_ASSIGN_OR_RETURN(HfVocabulary vocab, LoadHfVocabulary(dir, wc.hp.n_vocab));
  EARSHOT_RETURN_IF_ERROR(ResolveTokens(&vocab, generation, config, multilingual, &meta, &model.notes));
  EARSHOT_RETURN_IF_ERROR(ReadGenerationLists(generation, config, &meta));
  // The decoder adds language, task and no-timestamps tokens at run time (see importers.h).
  meta.special.default_prompt = {meta.special.sot};

  ModelCard& card = meta.card;
  card.name = wc.name.empty() ? BaseName(dir) : wc.name;
  card.description = "Whisper checkpoint imported from the Hugging Face folder '" + BaseName(dir) + "'";
  card.license = "see the checkpoint's licence";
  card.training_data = "see the checkpoint's model card";
  if (multilingual) {
    for (const Language& l : meta.special.languages) card.languages.push_back(l.code);
  } else {
    card.languages = {"en"};
  }
  card.extra_json = Json{{"source", "huggingface-whisper"}, {"multilingual", multilingual}}.dump();

  EARSHOT_ASSIGN_OR_RETURN(auto hf_tensors, ListSafetensors(dir));
  std::map<std::string, SourceTensor> canonical;
  const SourceTensor* proj_out = nullptr;
  for (const auto& [name, tensor] : hf_tensors) {
    EARSHOT_ASSIGN_OR_RETURN(std::string c, CanonicalWhisperName(name));
    if (c.empty()) {
      proj_out = &tensor;
      continue;
    }
    if (!canonical.emplace(c, tensor).second) {
      return Status::Error("tensor '" + name + "' duplicates another tensor that also maps to '" + c + "'");
    }
  }
  if (proj_out) {
    EARSHOT_RETURN_IF_ERROR(CheckTiedProjection(*proj_out, canonical));
    model.notes.push_back("proj_out.weight equals the token embedding (tied): not stored twice");
  }
  EARSHOT_ASSIGN_OR_RETURN(model.tensors, ConvertCheckpointTensors(meta.hparams, canonical, options, &model.notes));
  return model;
}

}  // namespace earshot
