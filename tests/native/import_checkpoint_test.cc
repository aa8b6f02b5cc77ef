// Importing our own float checkpoint format (what the training recipe exports).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

Expected<ImportedModel> ImportFolder(const CheckpointFolder& f, const std::string& name, DType dtype = DType::F16) {
  const std::string dir = FreshDir(name);
  WriteCheckpointFolder(f, dir);
  ImportOptions options;
  options.matrix_dtype = dtype;
  return ImportCheckpoint(dir, options);
}

TEST(ImportCheckpoint, EverythingCarriedOver) {
  const CheckpointFolder f = MakeCheckpointFolder(1);
  auto m = ImportFolder(f, "ckpt_ok");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelMeta& meta = m->meta;
  EXPECT_EQ(meta.hparams.n_vocab, 40);
  EXPECT_EQ(meta.hparams.n_audio_layer, f.hp.n_audio_layer);
  EXPECT_TRUE(meta.hparams.variable_length_audio);
  EXPECT_EQ(meta.hparams.edge_silence_ms, 0);  // not in this config: none
  EXPECT_EQ(meta.mel.n_mels, f.hp.n_mels);
  EXPECT_EQ(meta.mel.n_fft, 400);
  EXPECT_EQ(meta.special.sot, 1);
  EXPECT_EQ(meta.special.eot, 2);
  EXPECT_EQ(meta.special.no_speech, -1);
  EXPECT_EQ(meta.special.transcribe, 6);
  EXPECT_EQ(meta.special.translate, -1);
  ASSERT_EQ(meta.special.languages.size(), 1u);
  EXPECT_EQ(meta.special.languages[0].code, "en");
  EXPECT_EQ(meta.special.languages[0].token, 7);
  EXPECT_EQ(meta.special.suppress_tokens, (std::vector<int>{0, 3}));
  EXPECT_EQ(meta.special.begin_suppress_tokens, (std::vector<int>{2}));
  EXPECT_EQ(meta.special.default_prompt, (std::vector<int>{1}));
  ASSERT_EQ(meta.alignment_heads.size(), 2u);
  EXPECT_EQ(meta.alignment_heads[0].layer, 1);
  EXPECT_EQ(meta.card.name, "earshot-tiny");
  EXPECT_EQ(meta.card.version, "0.1");
  EXPECT_EQ(meta.card.license, "MIT");
  EXPECT_EQ(meta.card.training_data, "synthetic");
  ASSERT_EQ(meta.card.wer.size(), 1u);
  EXPECT_EQ(meta.card.wer[0].decoding, "beam5");
  EXPECT_FLOAT_EQ(meta.card.wer[0].wer, 12.5f);
  EXPECT_EQ(meta.card.wer[0].words, 456);
  EXPECT_EQ(Json::parse(meta.card.extra_json), (Json{{"steps", 1000}, {"notes", {"a", "b"}}}));

  // SentencePiece pieces as raw bytes; control pieces keep their text.
  EXPECT_EQ(meta.vocab.kind, TokenizerKind::SentencePiece);
  EXPECT_EQ(meta.vocab.tokens[1], "<s>");
  EXPECT_EQ(meta.vocab.tokens[3], "\n");
  EXPECT_EQ(meta.vocab.tokens[4], " the");
  EXPECT_EQ(meta.vocab.tokens[5], " hello");
  EXPECT_EQ(meta.vocab.tokens[6], "<|transcribe|>");
  EXPECT_EQ(meta.vocab.special_ids, (std::vector<int>{0, 1, 2, 6, 7}));

  // f16 matrices within half-precision rounding, f32 vectors exact.
  EXPECT_EQ(m->tensors.size(), f.weights.size());
  for (const TensorData& t : m->tensors) {
    const bool vector = t.shape.size() == 1;
    ASSERT_EQ(t.dtype, vector ? DType::F32 : DType::F16) << t.name;
    const std::vector<float> got = ImportedValues(t), want = f.weights.at(t.name);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i],
                  vector ? 0.0f : std::fmax(std::ldexp(std::fabs(want[i]), -11), std::ldexp(1.0f, -24)))
          << t.name;
    }
  }

  const std::string out = FreshDir("ckpt_ok_out") + "/m.earshot";
  ASSERT_TRUE(WriteModelFile(*m, out).ok());
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
  auto model = Model::FromFile(out);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->meta().vocab.tokens[4], " the");
  EXPECT_EQ((*model)->Find("decoder.token_embedding.weight")->dtype, DType::F16);
}

TEST(ImportCheckpoint, F32KeepsValuesExactly) {
  const CheckpointFolder f = MakeCheckpointFolder(2);
  auto m = ImportFolder(f, "ckpt_f32", DType::F32);
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (const TensorData& t : m->tensors) {
    EXPECT_EQ(t.dtype, DType::F32);
    EXPECT_EQ(ImportedValues(t), f.weights.at(t.name)) << t.name;
  }
}

TEST(ImportCheckpoint, PositionalEmbeddingAndKeyBias) {
  CheckpointFolder f = MakeCheckpointFolder(3);
  f.weights["encoder.positional_embedding"] = WhisperSinusoids(f.hp.n_audio_ctx, f.hp.n_audio_state);
  f.weights["encoder.blocks.0.attn.key.bias"] = std::vector<float>(f.hp.n_audio_state, 0.0f);
  auto m = ImportFolder(f, "ckpt_sinusoids");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(FindTensor(*m, "encoder.positional_embedding"), nullptr);
  EXPECT_EQ(FindTensor(*m, "encoder.blocks.0.attn.key.bias"), nullptr);

  // Slightly off everywhere (beyond rounding): a learned embedding, kept.
  for (float& v : f.weights["encoder.positional_embedding"]) v += 0.01f;
  m = ImportFolder(f, "ckpt_learned");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const TensorData* pos = FindTensor(*m, "encoder.positional_embedding");
  ASSERT_NE(pos, nullptr);
  EXPECT_EQ(pos->dtype, DType::F16);
}

class CheckpointErrors : public ::testing::Test {
 protected:
  CheckpointFolder f = MakeCheckpointFolder(4);
  void ExpectError(const std::string& name, const std::string& needle) {
    auto m = ImportFolder(f, name);
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_NE(m.status().message().find(needle), std::string::npos) << m.status().message();
  }
};

TEST_F(CheckpointErrors, FormatAndVersion) {
  f.config["format"] = "something-else";
  ExpectError("ckpt_format", "\"format\" is not \"earshot-checkpoint\"");
  f.config["format"] = "earshot-checkpoint";
  f.config["format_version"] = 2;
  ExpectError("ckpt_version", "checkpoint format_version 2; this earshot reads 1");
  f.config["format_version"] = 1;
  f.config["dims"].erase("n_text_head");
  ExpectError("ckpt_dims", "\"n_text_head\" is missing");
  f.config["dims"]["n_text_head"] = "two";
  ExpectError("ckpt_dims_type", "\"n_text_head\" must be an integer");
}

TEST(ImportCheckpoint, EdgeSilenceIsCarriedOverAndChecked) {
  CheckpointFolder f = MakeCheckpointFolder(5);
  f.config["edge_silence_ms"] = 250;
  auto m = ImportFolder(f, "ckpt_edge");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->meta.hparams.edge_silence_ms, 250);
  f.config["edge_silence_ms"] = "a quarter second";
  auto bad = ImportFolder(f, "ckpt_edge_type");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"edge_silence_ms\" must be an integer"), std::string::npos)
      << bad.status().message();
}

TEST_F(CheckpointErrors, Tokenizer) {
  f.tokenizer["pieces"].erase(f.tokenizer["pieces"].size() - 1);
  ExpectError("ckpt_tok_count", "39 pieces but the model has n_vocab = 40");
  f = MakeCheckpointFolder(4);
  f.tokenizer["kind"] = "wordpiece";
  ExpectError("ckpt_tok_kind", "\"kind\" must be");
  f = MakeCheckpointFolder(4);
  f.tokenizer["special_ids"] = {0, 40};
  ExpectError("ckpt_tok_special", "special id 40 is not a token id");
}

TEST_F(CheckpointErrors, Tensors) {
  f.weights.erase("encoder.ln_post.bias");
  ExpectError("ckpt_missing", "the checkpoint lacks tensor 'encoder.ln_post.bias'");
  f = MakeCheckpointFolder(4);
  f.weights["decoder.extra_head.weight"] = {1, 2, 3};
  ExpectError("ckpt_unknown", "unknown tensor 'decoder.extra_head.weight'");
  f = MakeCheckpointFolder(4);
  f.weights["decoder.ln.weight"][5] = std::nanf("");
  ExpectError("ckpt_nan", "'decoder.ln.weight' holds NaN or infinity");
  f = MakeCheckpointFolder(4);
  f.weights["decoder.token_embedding.weight"][7] = 1e6f;
  ExpectError("ckpt_f16_range", "beyond the f16 range: import with --dtype f32");
}

TEST_F(CheckpointErrors, SpecialTokensOutOfRange) {
  f.config["special_tokens"]["eot"] = 40;
  const std::string dir = FreshDir("ckpt_special");
  WriteCheckpointFolder(f, dir);
  auto m = ImportCheckpoint(dir);
  ASSERT_TRUE(m.ok());  // the importer carries ids over; writing the model checks them
  const Status st = WriteModelFile(*m, dir + "/out.earshot");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("special eot token id 40 is outside the vocabulary [0, 40)"), std::string::npos)
      << st.message();
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.earshot"));
}

TEST_F(CheckpointErrors, MissingFiles) {
  const std::string dir = FreshDir("ckpt_files");
  WriteCheckpointFolder(f, dir);
  std::filesystem::remove(dir + "/tokenizer.json");
  auto m = ImportCheckpoint(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("tokenizer.json"), std::string::npos) << m.status().message();
  WriteText(dir + "/config.json", "{ not json");
  m = ImportCheckpoint(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("is not valid JSON"), std::string::npos) << m.status().message();
  EXPECT_FALSE(ImportCheckpoint(dir + "/config.json").ok());  // not a folder
}

}  // namespace
}  // namespace earshot
