// Our own float checkpoint (what the training recipe exports): config.json + model.safetensors + tokenizer.json.
#include "quantize/import_util.h"
#include "quantize/importers.h"
#include "quantize/tokenizer_import.h"

namespace earshot {
namespace {

constexpr int kCheckpointFormatVersion = 1;

Status ReadDims(const Json& config, const std::string& where, HyperParams* hp) {
  const Json* dims = config.contains("dims") ? &config["dims"] : nullptr;
  if (!dims || !dims->is_object()) return Status::Error(where + ": \"dims\" object is missing");
  JsonFields d(*dims, where + " dims");
  EARSHOT_RETURN_IF_ERROR(d.Int("n_mels", &hp->n_mels, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_audio_ctx", &hp->n_audio_ctx, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_audio_state", &hp->n_audio_state, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_audio_head", &hp->n_audio_head, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_audio_layer", &hp->n_audio_layer, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_text_ctx", &hp->n_text_ctx, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_text_state", &hp->n_text_state, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_text_head", &hp->n_text_head, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_text_layer", &hp->n_text_layer, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("n_vocab", &hp->n_vocab, true));
  EARSHOT_RETURN_IF_ERROR(d.Int("conv1_stride", &hp->conv1_stride, false));
  hp->variable_length_audio = true;
  JsonFields top(config, where);
  EARSHOT_RETURN_IF_ERROR(top.Int("edge_silence_ms", &hp->edge_silence_ms, false));
  return top.Bool("variable_length_audio", &hp->variable_length_audio);
}

Status ReadMel(const Json& config, const std::string& where, const HyperParams& hp, MelSettings* mel) {
  mel->n_mels = hp.n_mels;
  const Json* m = config.contains("mel") ? &config["mel"] : nullptr;
  if (!m || m->is_null()) return Status::Ok();
  if (!m->is_object()) return Status::Error(where + ": \"mel\" must be an object");
  JsonFields f(*m, where + " mel");
  EARSHOT_RETURN_IF_ERROR(f.Int("sample_rate", &mel->sample_rate, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("n_fft", &mel->n_fft, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("hop_length", &mel->hop_length, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("n_mels", &mel->n_mels, false));
  return f.Int("chunk_seconds", &mel->chunk_seconds, false);
}

Status ReadSpecialTokens(const Json& config, const std::string& where, SpecialTokens* s) {
  const Json* st = config.contains("special_tokens") ? &config["special_tokens"] : nullptr;
  if (!st || !st->is_object()) return Status::Error(where + ": \"special_tokens\" object is missing");
  JsonFields f(*st, where + " special_tokens");
  EARSHOT_RETURN_IF_ERROR(f.Int("sot", &s->sot, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("eot", &s->eot, true));
  EARSHOT_RETURN_IF_ERROR(f.Int("sot_prev", &s->sot_prev, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("sot_lm", &s->sot_lm, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("no_speech", &s->no_speech, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("no_timestamps", &s->no_timestamps, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("timestamp_begin", &s->timestamp_begin, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("transcribe", &s->transcribe, false));
  EARSHOT_RETURN_IF_ERROR(f.Int("translate", &s->translate, false));

  JsonFields top(config, where);
  if (const Json* langs = top.Get("languages")) {
    if (!langs->is_array()) return Status::Error(where + ": \"languages\" must be a list");
    for (const Json& l : *langs) {
      Language lang;
      JsonFields lf(l, where + " languages");
      EARSHOT_RETURN_IF_ERROR(lf.String("code", &lang.code));
      EARSHOT_RETURN_IF_ERROR(lf.Int("token", &lang.token, true));
      if (lang.code.empty()) return Status::Error(where + ": a language has no \"code\"");
      s->languages.push_back(lang);
    }
  }
  EARSHOT_RETURN_IF_ERROR(top.IntList("suppress_tokens", &s->suppress_tokens));
  EARSHOT_RETURN_IF_ERROR(top.IntList("begin_suppress_tokens", &s->begin_suppress_tokens));
  EARSHOT_RETURN_IF_ERROR(top.IntList("default_prompt", &s->default_prompt));
  if (s->default_prompt.empty()) s->default_prompt = {s->sot};
  return Status::Ok();
}

Status ReadAlignmentHeads(const Json& config, const std::string& where, std::vector<AlignmentHead>* out) {
  const Json* heads = JsonFields(config, where).Get("alignment_heads");
  if (!heads) return Status::Ok();
  if (!heads->is_array()) return Status::Error(where + ": \"alignment_heads\" must be a list of [layer, head]");
  for (const Json& h : *heads) {
    if (!h.is_array() || h.size() != 2 || !h[0].is_number_integer() || !h[1].is_number_integer()) {
      return Status::Error(where + ": alignment head " + h.dump() + " is not [layer, head]");
    }
    out->push_back({h[0].get<int>(), h[1].get<int>()});
  }
  return Status::Ok();
}

Status ReadCard(const Json& config, const std::string& where, ModelCard* card) {
  const Json* c = JsonFields(config, where).Get("card");
  if (!c) return Status::Ok();
  if (!c->is_object()) return Status::Error(where + ": \"card\" must be an object");
  JsonFields f(*c, where + " card");
  EARSHOT_RETURN_IF_ERROR(f.String("name", &card->name));
  EARSHOT_RETURN_IF_ERROR(f.String("version", &card->version));
  EARSHOT_RETURN_IF_ERROR(f.String("description", &card->description));
  EARSHOT_RETURN_IF_ERROR(f.String("license", &card->license));
  EARSHOT_RETURN_IF_ERROR(f.String("training_data", &card->training_data));
  if (const Json* langs = f.Get("languages")) {
    if (!langs->is_array()) return Status::Error(where + ": card languages must be a list of strings");
    for (const Json& l : *langs) {
      if (!l.is_string()) return Status::Error(where + ": card languages must be a list of strings");
      card->languages.push_back(l.get<std::string>());
    }
  }
  if (const Json* wer = f.Get("wer")) {
    if (!wer->is_array()) return Status::Error(where + ": card wer must be a list");
    for (const Json& w : *wer) {
      JsonFields wf(w, where + " card wer");
      WerEntry e;
      EARSHOT_RETURN_IF_ERROR(wf.String("test_set", &e.test_set));
      EARSHOT_RETURN_IF_ERROR(wf.String("decoding", &e.decoding));
      EARSHOT_RETURN_IF_ERROR(wf.Int("words", &e.words, false));
      if (const Json* v = wf.Get("wer")) {
        if (!v->is_number()) return Status::Error(where + ": card wer value must be a number");
        e.wer = v->get<float>();
      }
      card->wer.push_back(e);
    }
  }
  if (const Json* extra = f.Get("extra")) card->extra_json = extra->dump();
  return Status::Ok();
}

}  // namespace

Expected<ImportedModel> ImportCheckpoint(const std::string& dir, const ImportOptions& options) {
  if (!IsDirectory(dir)) return Status::Error("'" + dir + "' is not a directory");
  const std::string config_path = JoinPath(dir, "config.json");
  EARSHOT_ASSIGN_OR_RETURN(Json config, ReadJsonFile(config_path));
  const std::string where = "'" + config_path + "'";
  if (!config.is_object()) return Status::Error(where + ": not a JSON object");
  if (config.value("format", Json()) != "earshot-checkpoint") {
    return Status::Error(where +
                         ": \"format\" is not \"earshot-checkpoint\" (for a Hugging Face Whisper folder use "
                         "'earshot import whisper')");
  }
  int version = 0;
  EARSHOT_RETURN_IF_ERROR(JsonFields(config, where).Int("format_version", &version, true));
  if (version != kCheckpointFormatVersion) {
    return Status::Error(where + ": checkpoint format_version " + std::to_string(version) + "; this earshot reads " +
                         std::to_string(kCheckpointFormatVersion));
  }

  ImportedModel model;
  ModelMeta& meta = model.meta;
  EARSHOT_RETURN_IF_ERROR(ReadDims(config, where, &meta.hparams));
  EARSHOT_RETURN_IF_ERROR(ReadMel(config, where, meta.hparams, &meta.mel));
  EARSHOT_RETURN_IF_ERROR(ReadSpecialTokens(config, where, &meta.special));
  EARSHOT_RETURN_IF_ERROR(ReadAlignmentHeads(config, where, &meta.alignment_heads));
  EARSHOT_RETURN_IF_ERROR(ReadCard(config, where, &meta.card));
  if (meta.card.name.empty()) meta.card.name = BaseName(dir);
  EARSHOT_RETURN_IF_ERROR(ValidateHyperParams(meta.hparams).With(where));
  EARSHOT_RETURN_IF_ERROR(CheckModelFits(meta.hparams, options));

  EARSHOT_ASSIGN_OR_RETURN(meta.vocab, LoadCheckpointTokenizer(JoinPath(dir, "tokenizer.json"), meta.hparams.n_vocab));
  EARSHOT_ASSIGN_OR_RETURN(auto source, ListSafetensors(dir));
  EARSHOT_ASSIGN_OR_RETURN(model.tensors, ConvertCheckpointTensors(meta.hparams, source, options, &model.notes));
  return model;
}

}  // namespace earshot
