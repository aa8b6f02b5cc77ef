// The Transcriber on random tiny models: window handling, prompt rules, no-speech probability, timestamps,
// and agreement between the one-call API and its pieces.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "decode/transcriber.h"
#include "model/model.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

std::shared_ptr<const Model> BuildModel(const ModelMeta& meta, uint32_t seed) {
  auto bytes = SerializeModel(meta, testutil::MakeRandomTinyTensors(meta.hparams, seed));
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  auto model = Model::FromBuffer(std::move(bytes).value());
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? model.value() : nullptr;
}

Transcriber MakeTranscriber(const ModelMeta& meta, uint32_t seed) {
  auto t = Transcriber::Create(BuildModel(meta, seed));
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(t).value();
}

std::vector<float> Tone(size_t n, float freq, uint32_t seed) {
  testutil::TestRng rng(seed);
  std::vector<float> pcm(n);
  for (size_t i = 0; i < n; ++i) pcm[i] = 0.3f * std::sin(6.2831853f * freq * i / 16000.0f) + 0.05f * rng.Uniform();
  return pcm;
}

// What Transcribe does, by hand: each window's audio (`step` samples at most) between `edge` zeros on each side,
// through ComputeMel, Encode and DecodeWindow; the windows' tokens joined.
std::vector<int> TokensWindowByWindow(const Transcriber& t, const std::vector<float>& pcm, size_t step, size_t edge,
                                      const DecodeOptions& o) {
  std::vector<int> tokens;
  for (size_t off = 0; off < pcm.size(); off += step) {
    const size_t len = std::min(step, pcm.size() - off);
    std::vector<float> padded(edge, 0.0f);
    padded.insert(padded.end(), pcm.begin() + off, pcm.begin() + off + len);
    padded.insert(padded.end(), edge, 0.0f);
    auto mel = t.ComputeMel(padded.data(), padded.size());
    auto window_mel = t.ComputeWindowMel(pcm.data() + off, len);
    EXPECT_TRUE(mel.ok() && window_mel.ok());
    if (!mel.ok() || !window_mel.ok()) return {};
    EXPECT_EQ(window_mel->data, mel->data);
    auto audio = t.Encode(mel.value());
    EXPECT_TRUE(audio.ok());
    if (!audio.ok()) return {};
    auto d = t.DecodeWindow(audio.value(), o);
    EXPECT_TRUE(d.ok());
    if (!d.ok()) return {};
    tokens.insert(tokens.end(), d->beam.best.tokens.begin(), d->beam.best.tokens.end());
  }
  return tokens;
}

std::vector<int> TokenIds(const Transcript& r) {
  std::vector<int> ids;
  for (const TokenInfo& tok : r.tokens) ids.push_back(tok.id);
  return ids;
}

// Vocabulary 64 with timestamp tokens: text 0..39, eot 40, sot 41, no_timestamps 42, <|0.00|>.. at 43..63.
ModelMeta TimestampMeta() {
  ModelMeta meta = testutil::MakeTinyMeta(testutil::TinyHyperParams());
  meta.special.eot = 40;
  meta.special.sot = 41;
  meta.special.no_timestamps = 42;
  meta.special.timestamp_begin = 43;
  meta.special.default_prompt = {41};
  meta.vocab.special_ids = {40, 41, 42};
  return meta;
}

TEST(Transcriber, TranscribesShortAudio) {
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 11);
  const auto pcm = Tone(4000, 440, 1);
  DecodeOptions o;
  o.beam_size = 3;
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_LE(r->tokens.size(), 7u);  // n_text_ctx / 2 - prompt
  std::vector<int> ids;
  for (const TokenInfo& tok : r->tokens) {
    ids.push_back(tok.id);
    EXPECT_EQ(tok.text, t.detokenizer().TokenBytes(tok.id));
    EXPECT_LE(tok.logprob, 0.0f);
  }
  std::string text = t.detokenizer().Decode(ids);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  EXPECT_EQ(r->text, text);
  EXPECT_GE(r->no_speech_prob, 0.0f);
  EXPECT_LE(r->no_speech_prob, 1.0f);
  EXPECT_LE(r->avg_logprob, 0.0f);
  ASSERT_FALSE(r->text.empty());  // random weights still produce text tokens with this seed
  {
    ASSERT_EQ(r->segments.size(), 1u);
    EXPECT_DOUBLE_EQ(r->segments[0].start, 0.0);
    EXPECT_DOUBLE_EQ(r->segments[0].end, 0.25);
  }
  // The same through the pieces, and greedy as beam 1.
  auto mel = t.ComputeMel(pcm.data(), pcm.size());
  ASSERT_TRUE(mel.ok());
  EXPECT_EQ(mel->n_frames, 25);  // variable-length model: 4000 / 160 frames
  auto audio = t.Encode(mel.value());
  ASSERT_TRUE(audio.ok());
  EXPECT_EQ(audio->n_positions, 13);
  auto d = t.DecodeWindow(audio.value(), o);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->beam.best.tokens, ids);
  EXPECT_EQ(d->prompt, (std::vector<int>{63}));
  EXPECT_FLOAT_EQ(d->no_speech_prob, r->no_speech_prob);
}

TEST(Transcriber, LongAudioIsDecodedInWindows) {
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 12);
  ASSERT_EQ(t.window_samples(), 7680u);  // 24 positions * 2 frames * 160 samples
  const auto pcm = Tone(2 * 7680 + 1000, 300, 2);
  DecodeOptions o;
  o.beam_size = 2;
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(TokenIds(r.value()), TokensWindowByWindow(t, pcm, 7680, 0, o));
  double last_end = 0;
  for (const Segment& s : r->segments) {
    EXPECT_GE(s.start, last_end - 1e-9);
    EXPECT_LE(s.end, pcm.size() / 16000.0 + 1e-9);
    EXPECT_LE(s.start, s.end);
    last_end = s.end;
  }
  EXPECT_FALSE(t.ComputeMel(pcm.data(), 7681).ok());  // more than one window
}

TEST(Transcriber, EdgeSilenceSurroundsEachWindow) {
  HyperParams hp = testutil::TinyHyperParams();
  hp.edge_silence_ms = 20;  // 320 samples before and after; 7680 - 640 of audio per window
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(hp), 17);
  ASSERT_EQ(t.edge_samples(), 320u);
  ASSERT_EQ(t.audio_per_window(), 7040u);
  const auto pcm = Tone(2 * 7040 + 500, 300, 6);
  DecodeOptions o;
  o.beam_size = 2;
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(TokenIds(r.value()), TokensWindowByWindow(t, pcm, 7040, 320, o));
  for (const Segment& s : r->segments) EXPECT_LE(s.end, pcm.size() / 16000.0 + 1e-9);
  EXPECT_EQ(t.ComputeWindowMel(pcm.data(), 7040)->n_frames, 48);  // a full window
  EXPECT_FALSE(t.ComputeWindowMel(pcm.data(), 7041).ok());

  hp.edge_silence_ms = 130;  // 4 x 2080 samples > 7680: less than half the window would be audio
  auto too_wide = Transcriber::Create(BuildModel(testutil::MakeTinyMeta(hp), 17));
  ASSERT_FALSE(too_wide.ok());
  EXPECT_NE(too_wide.status().message().find("edge_silence_ms = 130 leaves less than half of the encoder window"),
            std::string::npos);
}

TEST(Transcriber, FixedLengthModelsPadToTheWindow) {
  HyperParams hp = testutil::TinyHyperParams();
  hp.variable_length_audio = false;
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(hp), 13);
  EXPECT_TRUE(t.pads_to_window());
  const auto pcm = Tone(1000, 500, 3);
  auto mel = t.ComputeMel(pcm.data(), pcm.size());
  ASSERT_TRUE(mel.ok());
  EXPECT_EQ(mel->n_frames, hp.window_frames());
  DecodeOptions o;
  o.beam_size = 1;
  EXPECT_TRUE(t.Transcribe(pcm.data(), pcm.size(), o).ok());
}

TEST(Transcriber, EmptyAudioGivesEmptyTranscript) {
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 14);
  auto r = t.Transcribe(nullptr, 0, DecodeOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->text.empty());
  EXPECT_TRUE(r->tokens.empty());
}

TEST(Transcriber, NoSpeechProbabilityComesFromTheSotPosition) {
  ModelMeta meta = testutil::MakeTinyMeta(testutil::TinyHyperParams());
  meta.special.no_speech = 61;
  meta.special.default_prompt = {63, 5};  // sot is not the last prompt token
  Transcriber t = MakeTranscriber(meta, 15);
  const auto pcm = Tone(3000, 200, 4);
  auto mel = t.ComputeMel(pcm.data(), pcm.size());
  auto audio = t.Encode(mel.value());
  ASSERT_TRUE(audio.ok());
  DecodeOptions o;
  o.beam_size = 1;
  auto d = t.DecodeWindow(audio.value(), o);
  ASSERT_TRUE(d.ok()) << d.status().message();
  // softmax of the logits after the sot token, by hand.
  auto s = DecoderSession::Start(t.weights(), audio->data.data(), audio->n_positions, 1, 2);
  ASSERT_TRUE(s.ok());
  std::vector<float> logits(64);
  const int sot = 63;
  ASSERT_TRUE(s->Forward(&sot, 1, 1, logits.data()).ok());
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  EXPECT_NEAR(d->no_speech_prob, std::exp(static_cast<double>(logits[61])) / z, 1e-6);
}

TEST(Transcriber, TimestampsFollowTheRulesAndMakeSegments) {
  Transcriber t = MakeTranscriber(TimestampMeta(), 16);
  const auto pcm = Tone(6000, 350, 5);
  DecodeOptions o;
  o.beam_size = 2;
  o.timestamps = true;
  auto mel = t.ComputeMel(pcm.data(), pcm.size());
  auto audio = t.Encode(mel.value());
  ASSERT_TRUE(audio.ok());
  auto d = t.DecodeWindow(audio.value(), o);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->prompt, (std::vector<int>{41}));  // no <|notimestamps|>
  const std::vector<int>& tokens = d->beam.best.tokens;
  ASSERT_FALSE(tokens.empty());
  EXPECT_GE(tokens[0], 43);  // starts with a timestamp
  int last_ts = -1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_NE(tokens[i], 42);
    if (tokens[i] >= 43) {
      EXPECT_GE(tokens[i], last_ts);  // never backwards
      last_ts = tokens[i];
    }
  }
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->segments.empty());
  for (const Segment& s : r->segments) {
    EXPECT_LE(s.start, s.end);
    EXPECT_LE(s.end, 6000 / 16000.0 + 1e-9);
    EXPECT_FALSE(s.text.empty());
  }
  // Timestamps on a model without timestamp tokens is an error.
  Transcriber plain = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 16);
  auto err = plain.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("timestamp"), std::string::npos);
}

TEST(Transcriber, PromptRules) {
  ModelMeta meta = testutil::MakeTinyMeta(testutil::TinyHyperParams());
  meta.special.sot = 63;
  meta.special.no_timestamps = 60;
  meta.special.transcribe = 59;
  meta.special.languages = {{"en", 50}, {"de", 51}};
  meta.special.timestamp_begin = 52;
  meta.special.default_prompt = {63};
  DecodeOptions o;
  auto p = BuildPrompt(meta, o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value(), (std::vector<int>{63, 50, 59, 60}));
  o.language = "de";
  o.timestamps = true;
  EXPECT_EQ(BuildPrompt(meta, o).value(), (std::vector<int>{63, 51, 59}));
  o.language = "xx";
  auto bad = BuildPrompt(meta, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("en, de"), std::string::npos);
  // Tokens already in the default prompt are not repeated; with timestamps on, no_timestamps is dropped.
  meta.special.default_prompt = {63, 51, 59, 60};
  o.language = "de";
  EXPECT_EQ(BuildPrompt(meta, o).value(), (std::vector<int>{63, 51, 59}));
  o.timestamps = false;
  EXPECT_EQ(BuildPrompt(meta, o).value(), (std::vector<int>{63, 51, 59, 60}));
  // English-only: [sot] + no_timestamps; the language option does not add tokens.
  ModelMeta en = testutil::MakeTinyMeta(testutil::TinyHyperParams());
  en.special.no_timestamps = 60;
  EXPECT_EQ(BuildPrompt(en, DecodeOptions{}).value(), (std::vector<int>{63, 60}));
  en.card.languages = {"en"};
  DecodeOptions fr;
  fr.language = "fr";
  EXPECT_FALSE(BuildPrompt(en, fr).ok());
  en.special.default_prompt.clear();
  EXPECT_EQ(BuildPrompt(en, DecodeOptions{}).value(), (std::vector<int>{63, 60}));  // falls back to [sot]
}

TEST(Transcriber, MaxNewTokensRule) {
  HyperParams hp = testutil::TinyHyperParams();  // n_text_ctx 16
  EXPECT_EQ(MaxNewTokens(hp, 1, 0).value(), 7);   // 16/2 - 1
  EXPECT_EQ(MaxNewTokens(hp, 4, 0).value(), 4);
  EXPECT_EQ(MaxNewTokens(hp, 4, 100).value(), 12);  // capped: 4 + 12 = 16
  EXPECT_EQ(MaxNewTokens(hp, 4, 3).value(), 3);
  EXPECT_EQ(MaxNewTokens(hp, 10, 0).value(), 1);  // at least one
  EXPECT_FALSE(MaxNewTokens(hp, 16, 0).ok());
  EXPECT_FALSE(MaxNewTokens(hp, 0, 0).ok());
}

TEST(Transcriber, MinNewTokensFixesTheDecodedLength) {
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 13);
  const auto pcm = Tone(4000, 300, 4);
  for (int beam : {1, 3}) {
    DecodeOptions o;
    o.beam_size = beam;
    o.max_new_tokens = 6;
    o.min_new_tokens = 6;
    auto r = t.Transcribe(pcm.data(), pcm.size(), o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->tokens.size(), 6u);
    EXPECT_EQ(r->decode_steps, 5);
    EXPECT_GE(r->prompt_ms, 0.0);
    EXPECT_LE(r->prompt_ms, r->decode_ms);
  }
  DecodeOptions bad;
  bad.min_new_tokens = -1;
  EXPECT_FALSE(t.Transcribe(pcm.data(), pcm.size(), bad).ok());
}

// The decoder the way the cache used to work: every position allocated before the prompt.
class ReservedScorer : public StepScorer {
 public:
  explicit ReservedScorer(DecoderSession* s) : s_(s) {}
  Status Score(const std::vector<int>& source_rows, const std::vector<int>& new_tokens,
               const std::vector<std::vector<int>>&, float* logits) override {
    EARSHOT_RETURN_IF_ERROR(s_->ReorderRows(source_rows));
    return s_->Forward(new_tokens.data(), static_cast<int>(new_tokens.size()), 1, logits);
  }

 private:
  DecoderSession* s_;
};

// A long forced decode (the cache grows twice, the encoder output and features are freed early)
// gives the same tokens and log-probs, bit for bit, as a decode whose cache was allocated whole up front.
TEST(Transcriber, LongDecodeMatchesAPreallocatedCache) {
  HyperParams hp = testutil::TinyHyperParams();
  hp.n_text_ctx = 300;
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(hp), 19);
  const auto pcm = Tone(4000, 250, 8);
  DecodeOptions o;
  o.beam_size = 3;
  o.max_new_tokens = 280;
  o.min_new_tokens = 280;
  auto r = t.Transcribe(pcm.data(), pcm.size(), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->tokens.size(), 280u);

  auto mel = t.ComputeMel(pcm.data(), pcm.size());
  ASSERT_TRUE(mel.ok());
  auto audio = t.Encode(mel.value());
  ASSERT_TRUE(audio.ok());
  const ModelMeta& meta = t.model().meta();
  auto prompt = BuildPrompt(meta, o);
  ASSERT_TRUE(prompt.ok());
  const int L = static_cast<int>(prompt->size()), V = hp.n_vocab;
  auto session = DecoderSession::Start(t.weights(), audio->data.data(), audio->n_positions, 3, L + 280);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE(session->ReservePositions(L + 280).ok());
  std::vector<float> logits(static_cast<size_t>(L) * V);
  ASSERT_TRUE(session->Forward(prompt->data(), 1, L, logits.data(), true).ok());
  LogitFilterConfig config = MakeLogitFilterConfig(meta, false);
  config.min_tokens_before_eot = 280;
  LogitFilter filter(std::move(config));
  BeamOptions b;
  b.beam_size = 3;
  b.max_new_tokens = 280;
  b.eot = meta.special.eot;
  b.n_vocab = V;
  ReservedScorer scorer(&session.value());
  auto want = BeamSearch(scorer, logits.data() + static_cast<size_t>(L - 1) * V, b, filter);
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(want->best.tokens.size(), r->tokens.size());
  for (size_t i = 0; i < r->tokens.size(); ++i) {
    ASSERT_EQ(r->tokens[i].id, want->best.tokens[i]) << i;
    ASSERT_EQ(r->tokens[i].logprob, want->best.token_logprobs[i]) << i;  // bit for bit
  }
  EXPECT_EQ(r->avg_logprob, static_cast<float>(want->best.sum_logprob / 281));
}

TEST(Transcriber, RejectsBadOptions) {
  Transcriber t = MakeTranscriber(testutil::MakeTinyMeta(testutil::TinyHyperParams()), 17);
  const auto pcm = Tone(2000, 100, 6);
  DecodeOptions o;
  o.beam_size = 0;
  EXPECT_FALSE(t.Transcribe(pcm.data(), pcm.size(), o).ok());
  o.beam_size = 65;
  EXPECT_FALSE(t.Transcribe(pcm.data(), pcm.size(), o).ok());
  EXPECT_FALSE(Transcriber::Create(nullptr).ok());
}

}  // namespace
}  // namespace earshot
