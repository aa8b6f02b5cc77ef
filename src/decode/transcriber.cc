#include "decode/transcriber.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "decode/segments.h"

namespace earshot {
namespace {

double MillisecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bool Contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string Trim(const std::string& s) {
  const char* ws = " \t\n\r";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return std::string();
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Probability of `id` under softmax(logits), computed in double.
float SoftmaxProb(const float* logits, int n, int id) {
  float mx = logits[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double z = 0;
  for (int i = 0; i < n; ++i) z += std::exp(static_cast<double>(logits[i]) - mx);
  return static_cast<float>(std::exp(static_cast<double>(logits[id]) - mx) / z);
}

// Runs the decoder for beam search: each step reorders the cache to the surviving hypotheses' rows and
// feeds every row its new token.
class DecoderScorer : public StepScorer {
 public:
  explicit DecoderScorer(DecoderSession* session) : session_(session) {}
  Status Score(const std::vector<int>& source_rows, const std::vector<int>& new_tokens,
               const std::vector<std::vector<int>>&, float* logits) override {
    EARSHOT_RETURN_IF_ERROR(session_->ReorderRows(source_rows));
    return session_->Forward(new_tokens.data(), static_cast<int>(new_tokens.size()), 1, logits);
  }

 private:
  DecoderSession* session_;
};

}  // namespace

Expected<std::vector<int>> BuildPrompt(const ModelMeta& meta, const DecodeOptions& options) {
  const SpecialTokens& sp = meta.special;
  std::vector<int> prompt = sp.default_prompt;
  if (prompt.empty()) {
    if (sp.sot < 0) return Status::Error("the model has no start-of-transcript token and no default prompt");
    prompt.push_back(sp.sot);
  }
  const std::string language = options.language.empty() ? "en" : options.language;
  if (!sp.languages.empty()) {
    const Language* found = nullptr;
    for (const Language& l : sp.languages)
      if (l.code == language) found = &l;
    if (!found) {
      std::string known;
      for (const Language& l : sp.languages) known += (known.empty() ? "" : ", ") + l.code;
      return Status::Error("language '" + language + "' is not supported by this model (it knows: " + known + ")");
    }
    if (!Contains(prompt, found->token)) prompt.push_back(found->token);
    if (sp.transcribe >= 0 && !Contains(prompt, sp.transcribe)) prompt.push_back(sp.transcribe);
  } else if (!meta.card.languages.empty() &&
             std::find(meta.card.languages.begin(), meta.card.languages.end(), language) ==
                 meta.card.languages.end()) {
    return Status::Error("language '" + language + "' is not supported by this model");
  }
  if (options.timestamps) {
    if (sp.timestamp_begin < 0) return Status::Error("this model has no timestamp tokens");
    prompt.erase(std::remove(prompt.begin(), prompt.end(), sp.no_timestamps), prompt.end());
  } else if (sp.no_timestamps >= 0 && !Contains(prompt, sp.no_timestamps)) {
    prompt.push_back(sp.no_timestamps);
  }
  return prompt;
}

Expected<int> MaxNewTokens(const HyperParams& hp, int prompt_length, int requested) {
  if (prompt_length < 1) return Status::Error("empty prompt");
  if (prompt_length >= hp.n_text_ctx)
    return Status::Error("the prompt (" + std::to_string(prompt_length) + " tokens) fills the text context of " +
                         std::to_string(hp.n_text_ctx));
  if (requested < 0) return Status::Error("max_new_tokens must not be negative");
  int m = requested > 0 ? requested : hp.n_text_ctx / 2 - prompt_length;
  m = std::min(m, hp.n_text_ctx - prompt_length);
  return std::max(m, 1);
}

Expected<Transcriber> Transcriber::Create(std::shared_ptr<const Model> model) {
  if (!model) return Status::Error("no model");
  Transcriber t;
  t.model_ = model;
  EARSHOT_ASSIGN_OR_RETURN(t.weights_, WhisperWeights::Bind(model));
  if (model->meta().mel.n_mels != model->hparams().n_mels)
    return Status::Error("the model's mel settings disagree with its n_mels");
  EARSHOT_ASSIGN_OR_RETURN(MelFrontEnd mel, MelFrontEnd::Create(model->meta().mel));
  t.mel_ = std::make_shared<const MelFrontEnd>(std::move(mel));
  t.detokenizer_ = std::make_shared<const Detokenizer>(model->meta().vocab, model->meta().special);
  if (4 * t.edge_samples() > t.window_samples())
    return Status::Error("edge_silence_ms = " + std::to_string(model->hparams().edge_silence_ms) +
                         " leaves less than half of the encoder window for audio");
  return t;
}

size_t Transcriber::window_samples() const {
  return static_cast<size_t>(model_->hparams().window_frames()) * static_cast<size_t>(mel_->settings().hop_length);
}

size_t Transcriber::edge_samples() const {
  return static_cast<size_t>(model_->hparams().edge_silence_ms) * static_cast<size_t>(mel_->settings().sample_rate) /
         1000;
}

Expected<LogMel> Transcriber::ComputeWindowMel(const float* pcm16k, size_t n) const {
  const size_t edge = edge_samples();
  if (edge == 0) return ComputeMel(pcm16k, n);
  if (n > audio_per_window()) return Status::Error("audio is longer than one encoder window");
  std::vector<float> padded(n + 2 * edge, 0.0f);
  std::copy(pcm16k, pcm16k + n, padded.begin() + static_cast<std::ptrdiff_t>(edge));
  return ComputeMel(padded.data(), padded.size());
}

Expected<LogMel> Transcriber::ComputeMel(const float* pcm16k, size_t n) const {
  if (n > window_samples()) return Status::Error("audio is longer than one encoder window");
  return mel_->Compute(pcm16k, n, pads_to_window() ? window_samples() : 0);
}

Expected<EncoderOutput> Transcriber::Encode(const LogMel& mel) const {
  return Encoder(weights_).Encode(mel.data.data(), mel.n_mels, mel.n_frames);
}

Expected<WindowDecode> Transcriber::DecodeWindow(const EncoderOutput& audio, const DecodeOptions& options) const {
  return DecodeWindow(audio, options, nullptr);
}

Expected<WindowDecode> Transcriber::DecodeWindow(const EncoderOutput& audio, const DecodeOptions& options,
                                                 EncoderOutput* release) const {
  const ModelMeta& meta = model_->meta();
  const HyperParams& hp = meta.hparams;
  const int V = hp.n_vocab;
  if (options.beam_size < 1 || options.beam_size > 64) return Status::Error("beam size must be in 1..64");
  if (options.min_new_tokens < 0) return Status::Error("min_new_tokens must not be negative");
  const auto t0 = std::chrono::steady_clock::now();
  WindowDecode out;
  EARSHOT_ASSIGN_OR_RETURN(out.prompt, BuildPrompt(meta, options));
  const int L = static_cast<int>(out.prompt.size());
  EARSHOT_ASSIGN_OR_RETURN(const int max_new, MaxNewTokens(hp, L, options.max_new_tokens));
  EARSHOT_ASSIGN_OR_RETURN(DecoderSession session, DecoderSession::Start(weights_, audio.data.data(),
                                                                        audio.n_positions, options.beam_size,
                                                                        L + max_new));
  // The decoder keeps its own cross-attention keys and values: the encoder output is no longer needed.
  if (release) std::vector<float>().swap(release->data);
  std::vector<float> logits(static_cast<size_t>(L) * V);
  EARSHOT_RETURN_IF_ERROR(session.Forward(out.prompt.data(), 1, L, logits.data(), /*all_positions=*/true));
  out.prompt_ms = MillisecondsSince(t0);

  // No-speech probability: P(no_speech) right after SOT when the model has that token, else P(EOT) as the
  // first generated token, both from the unfiltered distribution.
  if (meta.special.no_speech >= 0) {
    const auto sot_at = std::find(out.prompt.begin(), out.prompt.end(), meta.special.sot);
    const size_t row = sot_at == out.prompt.end() ? 0 : static_cast<size_t>(sot_at - out.prompt.begin());
    out.no_speech_prob = SoftmaxProb(logits.data() + row * V, V, meta.special.no_speech);
  } else if (meta.special.eot >= 0) {
    out.no_speech_prob = SoftmaxProb(logits.data() + static_cast<size_t>(L - 1) * V, V, meta.special.eot);
  }

  LogitFilterConfig filter_config = MakeLogitFilterConfig(meta, options.timestamps);
  filter_config.min_tokens_before_eot = options.min_new_tokens;
  LogitFilter filter(std::move(filter_config));
  BeamOptions beam;
  beam.beam_size = options.beam_size;
  beam.max_new_tokens = max_new;
  beam.eot = meta.special.eot;
  beam.n_vocab = V;
  // Only the last prompt position's logits seed the search.
  std::vector<float> last_logits(logits.end() - V, logits.end());
  std::vector<float>().swap(logits);
  DecoderScorer scorer(&session);
  EARSHOT_ASSIGN_OR_RETURN(out.beam, BeamSearch(scorer, last_logits.data(), beam, filter));
  return out;
}

Expected<Transcript> Transcriber::Transcribe(const float* pcm16k, size_t n, const DecodeOptions& options) const {
  Transcript result;
  if (n == 0) return result;
  if (pcm16k == nullptr) return Status::Error("no audio");
  const double rate = mel_->settings().sample_rate;
  const size_t window = audio_per_window();
  const Detokenizer& detok = *detokenizer_;
  const int ts_begin = model_->meta().special.timestamp_begin;
  double sum_logprob = 0;
  size_t logprob_count = 0;
  const double edge_s = edge_samples() / rate;
  for (size_t offset = 0; offset < n; offset += window) {
    const size_t len = std::min(window, n - offset);
    auto t0 = std::chrono::steady_clock::now();
    EncoderOutput audio;
    {
      // Scoped so that the features are freed before the decoder allocates.
      EARSHOT_ASSIGN_OR_RETURN(LogMel mel, ComputeWindowMel(pcm16k + offset, len));
      result.mel_ms += MillisecondsSince(t0);
      t0 = std::chrono::steady_clock::now();
      EARSHOT_ASSIGN_OR_RETURN(audio, Encode(mel));
      result.encode_ms += MillisecondsSince(t0);
    }
    t0 = std::chrono::steady_clock::now();
    EARSHOT_ASSIGN_OR_RETURN(WindowDecode decoded, DecodeWindow(audio, options, &audio));
    result.decode_ms += MillisecondsSince(t0);
    result.prompt_ms += decoded.prompt_ms;
    result.decode_steps += decoded.beam.steps;

    const Hypothesis& best = decoded.beam.best;
    if (offset == 0) result.no_speech_prob = decoded.no_speech_prob;
    sum_logprob += best.sum_logprob;
    logprob_count += best.tokens.size() + 1;
    for (size_t i = 0; i < best.tokens.size(); ++i)
      result.tokens.push_back({best.tokens[i], detok.TokenBytes(best.tokens[i]), best.token_logprobs[i]});

    const double start_s = offset / rate, end_s = (offset + len) / rate;
    std::string window_text;
    if (options.timestamps && ts_begin >= 0) {
      // The model's times count from the start of the leading silence.
      for (const TimedText& t : SplitAtTimestamps(best.tokens, detok, ts_begin, start_s - edge_s, end_s)) {
        const double start = std::min(std::max(t.start, start_s), end_s);
        Segment s{start, std::min(std::max(t.end, start), end_s), Trim(detok.Decode(t.tokens))};
        if (s.text.empty()) continue;
        window_text += (window_text.empty() ? "" : " ") + s.text;
        result.segments.push_back(std::move(s));
      }
    } else {
      window_text = Trim(detok.Decode(best.tokens));
      if (!window_text.empty()) result.segments.push_back({start_s, end_s, window_text});
    }
    if (!window_text.empty()) result.text += (result.text.empty() ? "" : " ") + window_text;
  }
  result.avg_logprob = logprob_count ? static_cast<float>(sum_logprob / logprob_count) : 0.0f;
  return result;
}

}  // namespace earshot
