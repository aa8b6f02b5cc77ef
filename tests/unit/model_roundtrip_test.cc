// Writing a model and loading it back gives the same metadata and the same tensor bytes.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "model/model.h"
#include "model/tensor_names.h"
#include "kernels/f16.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

using testutil::MakeRandomTinyTensors;
using testutil::MakeTinyMeta;
using testutil::TinyHyperParams;

// A meta that sets every field, so that the round trip covers all of them.
ModelMeta FullMeta(const HyperParams& hp) {
  ModelMeta m = MakeTinyMeta(hp);
  m.hparams.variable_length_audio = true;
  m.hparams.conv1_stride = 2;  // not the default, so that the round trip shows it is stored
  m.hparams.edge_silence_ms = 120;
  m.mel.sample_rate = 16000;
  m.mel.n_fft = 16;
  m.mel.hop_length = 4;
  m.mel.chunk_seconds = 10;
  m.mel.filters.assign(static_cast<size_t>(hp.n_mels) * (m.mel.n_fft / 2 + 1), 0.25f);
  m.vocab.kind = TokenizerKind::SentencePiece;
  m.vocab.tokens[3] = std::string("\xe2\x96\x81\0x", 5);  // bytes survive, embedded NUL included
  m.vocab.tokens[4] = "";                                 // empty tokens are allowed
  m.special.sot_prev = 5;
  m.special.sot_lm = 6;
  m.special.no_speech = 7;
  m.special.no_timestamps = 8;
  m.special.timestamp_begin = 9;
  m.special.transcribe = 10;
  m.special.translate = 11;
  m.special.languages = {{"en", 12}, {"de", 13}};
  m.special.suppress_tokens = {1, 2, 3};
  m.special.begin_suppress_tokens = {hp.n_vocab - 2};
  m.special.default_prompt = {hp.n_vocab - 1, 12, 10};
  m.card.name = "tiny";
  m.card.version = "1.2";
  m.card.description = "a test model";
  m.card.license = "MIT";
  m.card.training_data = "none";
  m.card.extra_json = "{\"k\": [1, 2]}";
  m.card.languages = {"en", "de"};
  m.card.wer = {{"dev", "beam5", 12.5f, 456}, {"test", "greedy", 3.25f, 7}};
  m.alignment_heads = {{0, 1}, {1, 0}};
  m.quant.method = "mixed";
  m.quant.budget_bytes = 1000;
  m.quant.total_bytes = 990;
  m.quant.average_bits = 5.5f;
  m.quant.measured_divergence = 0.01f;
  m.quant.layers = {{"encoder.conv1.weight", DType::I8, 0, 123, 0.5f}, {"x", DType::I4, 32, 7, 0.25f}};
  return m;
}

void ExpectSameMeta(const ModelMeta& a, const ModelMeta& b) {
  EXPECT_EQ(a.schema_major, b.schema_major);
  EXPECT_EQ(a.schema_minor, b.schema_minor);
  const HyperParams &x = a.hparams, &y = b.hparams;
  EXPECT_EQ(x.n_mels, y.n_mels);
  EXPECT_EQ(x.n_audio_ctx, y.n_audio_ctx);
  EXPECT_EQ(x.n_audio_state, y.n_audio_state);
  EXPECT_EQ(x.n_audio_head, y.n_audio_head);
  EXPECT_EQ(x.n_audio_layer, y.n_audio_layer);
  EXPECT_EQ(x.n_text_ctx, y.n_text_ctx);
  EXPECT_EQ(x.n_text_state, y.n_text_state);
  EXPECT_EQ(x.n_text_head, y.n_text_head);
  EXPECT_EQ(x.n_text_layer, y.n_text_layer);
  EXPECT_EQ(x.n_vocab, y.n_vocab);
  EXPECT_EQ(x.variable_length_audio, y.variable_length_audio);
  EXPECT_EQ(x.conv1_stride, y.conv1_stride);
  EXPECT_EQ(x.edge_silence_ms, y.edge_silence_ms);
  EXPECT_EQ(a.mel.sample_rate, b.mel.sample_rate);
  EXPECT_EQ(a.mel.n_fft, b.mel.n_fft);
  EXPECT_EQ(a.mel.hop_length, b.mel.hop_length);
  EXPECT_EQ(a.mel.n_mels, b.mel.n_mels);
  EXPECT_EQ(a.mel.chunk_seconds, b.mel.chunk_seconds);
  EXPECT_EQ(a.mel.filters, b.mel.filters);
  EXPECT_EQ(a.vocab.kind, b.vocab.kind);
  EXPECT_EQ(a.vocab.tokens, b.vocab.tokens);
  EXPECT_EQ(a.vocab.special_ids, b.vocab.special_ids);
  const SpecialTokens &s = a.special, &t = b.special;
  EXPECT_EQ(s.sot, t.sot);
  EXPECT_EQ(s.eot, t.eot);
  EXPECT_EQ(s.sot_prev, t.sot_prev);
  EXPECT_EQ(s.sot_lm, t.sot_lm);
  EXPECT_EQ(s.no_speech, t.no_speech);
  EXPECT_EQ(s.no_timestamps, t.no_timestamps);
  EXPECT_EQ(s.timestamp_begin, t.timestamp_begin);
  EXPECT_EQ(s.transcribe, t.transcribe);
  EXPECT_EQ(s.translate, t.translate);
  ASSERT_EQ(s.languages.size(), t.languages.size());
  for (size_t i = 0; i < s.languages.size(); ++i) {
    EXPECT_EQ(s.languages[i].code, t.languages[i].code);
    EXPECT_EQ(s.languages[i].token, t.languages[i].token);
  }
  EXPECT_EQ(s.suppress_tokens, t.suppress_tokens);
  EXPECT_EQ(s.begin_suppress_tokens, t.begin_suppress_tokens);
  EXPECT_EQ(s.default_prompt, t.default_prompt);
  EXPECT_EQ(a.card.name, b.card.name);
  EXPECT_EQ(a.card.version, b.card.version);
  EXPECT_EQ(a.card.description, b.card.description);
  EXPECT_EQ(a.card.license, b.card.license);
  EXPECT_EQ(a.card.training_data, b.card.training_data);
  EXPECT_EQ(a.card.extra_json, b.card.extra_json);
  EXPECT_EQ(a.card.languages, b.card.languages);
  ASSERT_EQ(a.card.wer.size(), b.card.wer.size());
  for (size_t i = 0; i < a.card.wer.size(); ++i) {
    EXPECT_EQ(a.card.wer[i].test_set, b.card.wer[i].test_set);
    EXPECT_EQ(a.card.wer[i].decoding, b.card.wer[i].decoding);
    EXPECT_EQ(a.card.wer[i].wer, b.card.wer[i].wer);
    EXPECT_EQ(a.card.wer[i].words, b.card.wer[i].words);
  }
  ASSERT_EQ(a.alignment_heads.size(), b.alignment_heads.size());
  for (size_t i = 0; i < a.alignment_heads.size(); ++i) {
    EXPECT_EQ(a.alignment_heads[i].layer, b.alignment_heads[i].layer);
    EXPECT_EQ(a.alignment_heads[i].head, b.alignment_heads[i].head);
  }
  EXPECT_EQ(a.quant.method, b.quant.method);
  EXPECT_EQ(a.quant.budget_bytes, b.quant.budget_bytes);
  EXPECT_EQ(a.quant.total_bytes, b.quant.total_bytes);
  EXPECT_EQ(a.quant.average_bits, b.quant.average_bits);
  EXPECT_EQ(a.quant.measured_divergence, b.quant.measured_divergence);
  ASSERT_EQ(a.quant.layers.size(), b.quant.layers.size());
  for (size_t i = 0; i < a.quant.layers.size(); ++i) {
    EXPECT_EQ(a.quant.layers[i].tensor, b.quant.layers[i].tensor);
    EXPECT_EQ(a.quant.layers[i].dtype, b.quant.layers[i].dtype);
    EXPECT_EQ(a.quant.layers[i].group_size, b.quant.layers[i].group_size);
    EXPECT_EQ(a.quant.layers[i].bytes, b.quant.layers[i].bytes);
    EXPECT_EQ(a.quant.layers[i].predicted_divergence, b.quant.layers[i].predicted_divergence);
  }
}

void ExpectSameTensors(const Model& model, const std::vector<TensorData>& tensors) {
  ASSERT_EQ(model.tensors().size(), tensors.size());
  for (const TensorData& t : tensors) {
    const TensorRef* r = model.Find(t.name);
    ASSERT_NE(r, nullptr) << t.name;
    EXPECT_EQ(r->name, t.name);
    EXPECT_EQ(r->shape, t.shape) << t.name;
    EXPECT_EQ(r->dtype, t.dtype) << t.name;
    EXPECT_EQ(r->layout, t.layout) << t.name;
    EXPECT_EQ(r->group_size, t.group_size) << t.name;
    ASSERT_EQ(r->nbytes, t.data.size()) << t.name;
    EXPECT_EQ(0, std::memcmp(r->data, t.data.data(), r->nbytes)) << t.name;
    ASSERT_EQ(r->scales_nbytes, t.scales.size()) << t.name;
    if (r->scales_nbytes) {
      EXPECT_EQ(0, std::memcmp(r->scales, t.scales.data(), r->scales_nbytes)) << t.name;
    }
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r->data) % 16, 0u) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r->scales) % 16, 0u) << t.name;
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    EXPECT_EQ(r->numel(), numel);
  }
}

class RoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(RoundTrip, SameMetaAndBytes) {
  const HyperParams hp = TinyHyperParams();
  const ModelMeta meta = FullMeta(hp);
  const std::vector<TensorData> tensors = MakeRandomTinyTensors(hp, 7, GetParam(), /*audio positions=*/true);
  auto bytes = SerializeModel(meta, tensors);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  const size_t size = bytes->size();
  auto model = Model::FromBuffer(std::move(bytes).value());
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->file_bytes(), size);
  ExpectSameMeta((*model)->meta(), meta);
  ExpectSameTensors(**model, tensors);
  EXPECT_EQ((*model)->Find("no.such.tensor"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, RoundTrip, ::testing::Values(DType::F32, DType::F16, DType::I8, DType::I4),
                         [](const ::testing::TestParamInfo<DType>& info) { return DTypeName(info.param); });

TEST(RoundTripTest, MinimalMetaAndHelperModelLoad) {
  const HyperParams hp = TinyHyperParams();
  AlignedBuffer bytes = MakeRandomTinyModel(hp, 1);
  ASSERT_GT(bytes.size(), 0u);
  auto model = Model::FromBuffer(std::move(bytes));
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelMeta& m = (*model)->meta();
  EXPECT_EQ(m.vocab.tokens[0], " ");
  EXPECT_EQ(m.vocab.tokens[33], "A");
  EXPECT_EQ(m.vocab.tokens[hp.n_vocab - 2], "<|endoftext|>");
  EXPECT_EQ(m.special.eot, hp.n_vocab - 2);
  EXPECT_EQ(m.special.sot, hp.n_vocab - 1);
  EXPECT_EQ(m.special.no_timestamps, -1);
  EXPECT_TRUE(m.special.languages.empty());
  EXPECT_TRUE(m.quant.method.empty());
  EXPECT_EQ((*model)->Find("encoder.positional_embedding"), nullptr);  // optional: engine computes sinusoids
  ASSERT_NE((*model)->Find("decoder.token_embedding.weight"), nullptr);
}

TEST(RoundTripTest, SameSeedSameBytes) {
  const HyperParams hp = TinyHyperParams();
  AlignedBuffer a = MakeRandomTinyModel(hp, 3, DType::F16), b = MakeRandomTinyModel(hp, 3, DType::F16),
                c = MakeRandomTinyModel(hp, 4, DType::F16);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size()));
  ASSERT_EQ(a.size(), c.size());
  EXPECT_NE(0, std::memcmp(a.data(), c.data(), a.size()));
}

TEST(RoundTripTest, FileRoundTripAndFileErrors) {
  const std::string dir = EARSHOT_BINARY_DIR;
  const std::string path = dir + "/model_roundtrip_test.earshot";
  AlignedBuffer bytes = MakeRandomTinyModel(TinyHyperParams(), 2);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
  auto model = Model::FromFile(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->file_bytes(), bytes.size());

  auto missing = Model::FromFile(dir + "/does-not-exist.earshot");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no such file"), std::string::npos) << missing.status().message();

  auto directory = Model::FromFile(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);

  f = std::fopen(path.c_str(), "wb");
  std::fclose(f);
  auto empty = Model::FromFile(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos) << empty.status().message();
  std::remove(path.c_str());
}

TEST(Float16Test, KnownValuesAndRounding) {
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // halfway above max: rounds to inf
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // halfway to it: even is zero
  EXPECT_EQ(F32ToF16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie to even
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(F32ToF16(INFINITY), 0x7C00);
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(NAN))));
  // Every finite half converts to float and back unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    ASSERT_EQ(F32ToF16(F16ToF32(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
}

}  // namespace
}  // namespace earshot
