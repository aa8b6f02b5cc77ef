// The engine's front door: 16 kHz PCM in, text with per-token log-probs and segments out.
//
//   EARSHOT_ASSIGN_OR_RETURN(auto model, Model::FromFile(path));
//   EARSHOT_ASSIGN_OR_RETURN(Transcriber t, Transcriber::Create(model));
//   EARSHOT_ASSIGN_OR_RETURN(Transcript r, t.Transcribe(pcm.data(), pcm.size(), DecodeOptions{}));
//
// Audio longer than one encoder window (HyperParams::window_frames() mel frames: 30 s for Whisper) is cut into
// consecutive windows whose texts are joined; segment times are relative to the start of the audio.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "audio/mel.h"
#include "core/status.h"
#include "decode/beam_search.h"
#include "decode/detokenizer.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/whisper_weights.h"

namespace earshot {

struct DecodeOptions {
  int beam_size = 5;
  int max_new_tokens = 0;  // 0: n_text_ctx/2 - prompt length
  // No EOT before this many tokens per window. Equal to max_new_tokens it fixes the decoded length, as
  // benchmarks on random weights need (they would otherwise stop at an arbitrary point).
  int min_new_tokens = 0;
  bool timestamps = false;
  std::string language = "en";  // multilingual models only
};

struct TokenInfo {
  int id = 0;
  std::string text;  // the token's raw bytes (may be part of a UTF-8 character)
  float logprob = 0;
};

struct Segment {
  double start = 0, end = 0;  // seconds from the start of the audio
  std::string text;
};

struct Transcript {
  std::string text;  // joined window texts, surrounding whitespace trimmed
  std::vector<TokenInfo> tokens;
  std::vector<Segment> segments;
  float no_speech_prob = 0;  // of the first window
  float avg_logprob = 0;     // sum_logprob / (tokens + 1), over all windows
  double mel_ms = 0, encode_ms = 0, decode_ms = 0;
  double prompt_ms = 0;  // part of decode_ms: starting the decoder (cross-attention K/V) and the prompt
  int decode_steps = 0;  // decoder calls after the prompt, all windows; per step: (decode_ms - prompt_ms) / steps
};

// Everything about decoding one window, for tools that need more than the transcript (earshot dump).
struct WindowDecode {
  std::vector<int> prompt;
  BeamResult beam;
  float no_speech_prob = 0;
  double prompt_ms = 0;  // decoder start and prompt, before the search
};

// Whisper's prompt for these options: meta.special.default_prompt; for multilingual models plus the
// language and transcribe tokens (if absent); plus no_timestamps when timestamps are off (removed when on).
Expected<std::vector<int>> BuildPrompt(const ModelMeta& meta, const DecodeOptions& options);

// The number of new tokens a prompt leaves room for: options.max_new_tokens (or n_text_ctx/2 - prompt
// length when 0), capped so that prompt + new tokens <= n_text_ctx.
Expected<int> MaxNewTokens(const HyperParams& hp, int prompt_length, int requested);

class Transcriber {
 public:
  static Expected<Transcriber> Create(std::shared_ptr<const Model> model);

  Expected<Transcript> Transcribe(const float* pcm16k, size_t n, const DecodeOptions& options) const;

  // Pieces of Transcribe, for tools and tests.
  // Samples per encoder window and whether audio is padded to it (fixed-length models).
  size_t window_samples() const;
  bool pads_to_window() const { return !model_->hparams().variable_length_audio; }
  // Silence put before and after each window's audio (HyperParams::edge_silence_ms), and the audio one window
  // holds: window_samples() less both edges.
  size_t edge_samples() const;
  size_t audio_per_window() const { return window_samples() - 2 * edge_samples(); }
  Expected<LogMel> ComputeMel(const float* pcm16k, size_t n) const;  // one window's worth at most
  // The features of one window as Transcribe computes them: the audio (audio_per_window() at most) between
  // edge_samples() of silence on each side.
  Expected<LogMel> ComputeWindowMel(const float* pcm16k, size_t n) const;
  Expected<EncoderOutput> Encode(const LogMel& mel) const;
  Expected<WindowDecode> DecodeWindow(const EncoderOutput& audio, const DecodeOptions& options) const;

  const Model& model() const { return *model_; }
  std::shared_ptr<const WhisperWeights> weights() const { return weights_; }
  const Detokenizer& detokenizer() const { return *detokenizer_; }

 private:
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const WhisperWeights> weights_;
  std::shared_ptr<const MelFrontEnd> mel_;
  std::shared_ptr<const Detokenizer> detokenizer_;

  // DecodeWindow that, when `release` is given, frees release->data once the decoder has taken the
  // cross-attention keys and values from it (`audio` may be *release): the decoder's peak memory then
  // does not include the encoder output.
  Expected<WindowDecode> DecodeWindow(const EncoderOutput& audio, const DecodeOptions& options,
                                      EncoderOutput* release) const;
};

}  // namespace earshot
