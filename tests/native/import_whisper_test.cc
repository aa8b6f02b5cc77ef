// Importing Hugging Face Whisper folders written here with random weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

Expected<ImportedModel> ImportFolder(const WhisperFolder& f, const WhisperFolderOptions& o, const std::string& name,
                                     DType dtype = DType::F16) {
  const std::string dir = FreshDir(name);
  WriteWhisperFolder(f, o, dir);
  ImportOptions options;
  options.matrix_dtype = dtype;
  return ImportWhisper(dir, options);
}

// Serializes and loads the result: whatever an importer produces must be a file the engine accepts.
std::shared_ptr<const Model> Load(const ImportedModel& m) {
  auto bytes = SerializeModel(m.meta, m.tensors);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  if (!bytes.ok()) return nullptr;
  auto model = Model::FromBuffer(std::move(bytes).value());
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? *model : nullptr;
}

bool HasNote(const ImportedModel& m, const std::string& needle) {
  for (const std::string& n : m.notes) {
    if (n.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(ImportWhisper, CanonicalNames) {
  EXPECT_EQ(CanonicalWhisperName("model.encoder.layers.3.self_attn.q_proj.weight").value(),
            "encoder.blocks.3.attn.query.weight");
  EXPECT_EQ(CanonicalWhisperName("decoder.layers.11.encoder_attn.k_proj.weight").value(),
            "decoder.blocks.11.cross_attn.key.weight");
  EXPECT_EQ(CanonicalWhisperName("model.decoder.layers.0.encoder_attn_layer_norm.bias").value(),
            "decoder.blocks.0.cross_attn_ln.bias");
  EXPECT_EQ(CanonicalWhisperName("model.encoder.layers.0.fc2.bias").value(), "encoder.blocks.0.mlp.2.bias");
  EXPECT_EQ(CanonicalWhisperName("model.encoder.layers.1.final_layer_norm.weight").value(),
            "encoder.blocks.1.mlp_ln.weight");
  EXPECT_EQ(CanonicalWhisperName("model.encoder.embed_positions.weight").value(), "encoder.positional_embedding");
  EXPECT_EQ(CanonicalWhisperName("model.decoder.layer_norm.bias").value(), "decoder.ln.bias");
  EXPECT_EQ(CanonicalWhisperName("proj_out.weight").value(), "");
  EXPECT_FALSE(CanonicalWhisperName("model.encoder.layers.0.encoder_attn.q_proj.weight").ok());  // encoder has none
  EXPECT_FALSE(CanonicalWhisperName("model.encoder.layers.x.fc1.weight").ok());
  EXPECT_FALSE(CanonicalWhisperName("model.encoder.layers.01.fc1.weight").ok());
  EXPECT_FALSE(CanonicalWhisperName("model.encoder.layers.0.fc1.scale").ok());
  auto unknown = CanonicalWhisperName("model.encoder.rotary.weight");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'model.encoder.rotary.weight'"), std::string::npos);
  // Every canonical tensor round-trips through the test's own HF naming.
  for (const TensorSpec& s : ExpectedTensorSpecs(testutil::TinyHyperParams())) {
    EXPECT_EQ(CanonicalWhisperName(HfName(s.name)).value(), s.name);
  }
}

TEST(ImportWhisper, EnglishOnlyVocabJsonF32) {
  WhisperFolderOptions o;
  const WhisperFolder f = MakeWhisperFolder(o, 1);
  auto m = ImportFolder(f, o, "english_only", DType::F32);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelMeta& meta = m->meta;
  EXPECT_EQ(meta.hparams.n_vocab, f.hp.n_vocab);
  EXPECT_EQ(meta.hparams.n_audio_state, 8);
  EXPECT_FALSE(meta.hparams.variable_length_audio);
  const SpecialTokens& s = meta.special;
  EXPECT_EQ(s.eot, f.eot);
  EXPECT_EQ(s.sot, f.sot);
  EXPECT_EQ(s.translate, f.translate);
  EXPECT_EQ(s.transcribe, f.transcribe);
  EXPECT_EQ(s.sot_lm, f.sot_lm);
  EXPECT_EQ(s.sot_prev, f.sot_prev);
  EXPECT_EQ(s.no_speech, f.no_speech);
  EXPECT_EQ(s.no_timestamps, f.no_timestamps);
  EXPECT_EQ(s.timestamp_begin, f.no_timestamps + 1);
  EXPECT_TRUE(s.languages.empty());  // English-only: no language choice
  EXPECT_EQ(s.default_prompt, std::vector<int>{f.sot});
  EXPECT_EQ(s.suppress_tokens, (std::vector<int>{1, 2, f.sot_prev}));
  EXPECT_EQ(s.begin_suppress_tokens, (std::vector<int>{220, f.eot}));
  ASSERT_EQ(meta.alignment_heads.size(), 2u);
  EXPECT_EQ(meta.alignment_heads[1].layer, 1);
  EXPECT_EQ(meta.alignment_heads[1].head, 1);
  // Byte-level spelling decoded to raw bytes.
  EXPECT_EQ(meta.vocab.kind, TokenizerKind::ByteLevelBpe);
  EXPECT_EQ(meta.vocab.tokens[256], " hello");
  EXPECT_EQ(meta.vocab.tokens[10], "\n");
  EXPECT_EQ(meta.vocab.tokens[0], std::string(1, '\0'));
  EXPECT_EQ(meta.vocab.tokens[0xE9], "\xE9");
  EXPECT_EQ(meta.vocab.tokens[f.eot], "<|endoftext|>");
  EXPECT_EQ(meta.vocab.tokens[f.sot], "<|startoftranscript|>");
  // Timestamps not listed in the folder: generated.
  EXPECT_EQ(meta.vocab.tokens[s.timestamp_begin], "<|0.00|>");
  EXPECT_EQ(meta.vocab.tokens[s.timestamp_begin + 1], "<|0.02|>");
  EXPECT_EQ(meta.vocab.tokens[s.timestamp_begin + 1500], "<|30.00|>");
  EXPECT_TRUE(HasNote(*m, "generated 1501 timestamp token names"));
  // Control tokens: everything from <|endoftext|> on.
  EXPECT_EQ(meta.vocab.special_ids.size(), static_cast<size_t>(f.hp.n_vocab - f.eot));
  EXPECT_EQ(meta.vocab.special_ids.front(), f.eot);
  EXPECT_EQ(meta.card.name, "tiny-test/whisper-random");
  EXPECT_EQ(meta.card.license, "see the checkpoint's licence");
  EXPECT_EQ(meta.card.languages, std::vector<std::string>{"en"});

  // Sinusoidal encoder positions dropped; the tied projection not stored; values exact in f32.
  EXPECT_EQ(FindTensor(*m, "encoder.positional_embedding"), nullptr);
  EXPECT_TRUE(HasNote(*m, "dropped encoder.positional_embedding"));
  EXPECT_TRUE(HasNote(*m, "tied"));
  EXPECT_EQ(m->tensors.size(), ExpectedTensorSpecs(f.hp).size() - 1);
  for (const TensorData& t : m->tensors) {
    EXPECT_EQ(t.dtype, DType::F32) << t.name;
    EXPECT_EQ(ImportedValues(t), f.weights.at(t.name)) << t.name;
  }
  auto model = Load(*m);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->meta().vocab.tokens[256], " hello");
}

TEST(ImportWhisper, MultilingualTokenizerJsonShardedF16) {
  WhisperFolderOptions o;
  o.multilingual = true;
  o.tokenizer_json = true;
  o.list_timestamps = true;
  o.sharded = true;
  o.model_prefix = false;
  o.learned_audio_positions = true;
  const WhisperFolder f = MakeWhisperFolder(o, 2);
  auto m = ImportFolder(f, o, "multilingual");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const SpecialTokens& s = m->meta.special;
  ASSERT_EQ(s.languages.size(), 3u);
  EXPECT_EQ(s.languages[0].code, "en");
  EXPECT_EQ(s.languages[0].token, f.language_ids.at("en"));
  EXPECT_EQ(s.languages[2].code, "haw");
  EXPECT_EQ(s.timestamp_begin, f.timestamp_begin);
  EXPECT_FALSE(HasNote(*m, "timestamp"));
  EXPECT_EQ(m->meta.card.languages, (std::vector<std::string>{"en", "de", "haw"}));
  EXPECT_EQ(s.default_prompt, std::vector<int>{f.sot});  // language and task come at run time
  EXPECT_EQ(m->meta.vocab.tokens[257], " the");

  // Learned positions are kept; matrices and embeddings in f16, vectors in f32.
  ASSERT_NE(FindTensor(*m, "encoder.positional_embedding"), nullptr);
  EXPECT_EQ(m->tensors.size(), ExpectedTensorSpecs(f.hp).size());
  for (const TensorData& t : m->tensors) {
    const bool vector = t.shape.size() == 1;
    EXPECT_EQ(t.dtype, vector ? DType::F32 : DType::F16) << t.name;
    const std::vector<float> got = ImportedValues(t), want = f.weights.at(t.name);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], vector ? 0.0f : 2.5e-4f) << t.name << "[" << i << "]";
    }
  }
  EXPECT_NE(Load(*m), nullptr);
}

TEST(ImportWhisper, HalfPrecisionCheckpointSinusoidsStillRecognised) {
  WhisperFolderOptions o;
  o.dtype = "F16";
  const WhisperFolder f = MakeWhisperFolder(o, 3);
  auto m = ImportFolder(f, o, "f16_source");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(FindTensor(*m, "encoder.positional_embedding"), nullptr);
  EXPECT_NE(Load(*m), nullptr);
}

TEST(ImportWhisper, SpecialTokensMapMarksControlTokens) {
  WhisperFolderOptions o;
  const WhisperFolder f = MakeWhisperFolder(o, 6);
  const std::string dir = FreshDir("special_map");
  WriteWhisperFolder(f, o, dir);
  WriteJson(dir + "/special_tokens_map.json", {{"additional_special_tokens", {"tok299", "<|nosuchtoken|>"}}});
  auto m = ImportWhisper(dir);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<int>& ids = m->meta.vocab.special_ids;
  EXPECT_NE(std::find(ids.begin(), ids.end(), 299), ids.end());
  EXPECT_EQ(std::find(ids.begin(), ids.end(), 298), ids.end());
  EXPECT_EQ(m->meta.vocab.tokens[299], "tok299");
  WriteText(dir + "/special_tokens_map.json", "[");
  EXPECT_FALSE(ImportWhisper(dir).ok());
}

// Real Whisper vocabulary layouts: .en (51864), multilingual (51865), large-v3 (51866 with 128 mels).
TEST(ImportWhisper, RealVocabularyLayouts) {
  struct Case {
    const char* name;
    bool multilingual;
    int n_languages, n_mels, vocab_size, eot, no_timestamps;
  };
  for (const Case& c :
       {Case{"tiny.en", false, 99, 80, 51864, 50256, 50362}, Case{"tiny", true, 99, 80, 51865, 50257, 50363},
        Case{"large-v3", true, 100, 128, 51866, 50257, 50364}}) {
    SCOPED_TRACE(c.name);
    WhisperFolderOptions o;
    o.multilingual = c.multilingual;
    o.n_regular = c.eot;
    o.n_mels = c.n_mels;
    o.languages.clear();
    for (int i = 0; i < c.n_languages; ++i) {
      o.languages.push_back(std::string(1, static_cast<char>('a' + i / 26 % 26)) + static_cast<char>('a' + i % 26) +
                            (i >= 52 ? "x" : ""));
    }
    const WhisperFolder f = MakeWhisperFolder(o, 4);
    ASSERT_EQ(f.hp.n_vocab, c.vocab_size);
    auto m = ImportFolder(f, o, std::string("layout_") + c.name, DType::F16);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->meta.special.eot, c.eot);
    EXPECT_EQ(m->meta.special.sot, c.eot + 1);
    EXPECT_EQ(m->meta.special.no_timestamps, c.no_timestamps);
    EXPECT_EQ(m->meta.special.timestamp_begin, c.no_timestamps + 1);
    EXPECT_EQ(m->meta.vocab.tokens.back(), "<|30.00|>");
    EXPECT_EQ(m->meta.special.languages.size(), c.multilingual ? static_cast<size_t>(c.n_languages) : 0u);
    EXPECT_EQ(m->meta.hparams.n_mels, c.n_mels);
    EXPECT_EQ(m->meta.mel.n_mels, c.n_mels);
    EXPECT_NE(Load(*m), nullptr);
  }
}

class WhisperErrors : public ::testing::Test {
 protected:
  WhisperFolderOptions o;
  WhisperFolder f = MakeWhisperFolder(o, 5);

  Status Import(const std::string& name) {
    auto m = ImportFolder(f, o, name);
    return m.ok() ? Status::Ok() : m.status();
  }
  void ExpectError(const std::string& name, const std::string& needle) {
    const Status st = Import(name);
    EXPECT_FALSE(st.ok()) << name;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  }
};

TEST_F(WhisperErrors, UnknownTensor) {
  f.weights["encoder.blocks.0.attn.query.scale"] = {1.0f};  // mapped by HfName to a name the importer rejects
  const std::string dir = FreshDir("err_unknown");
  WriteWhisperFolder(f, o, dir);
  // HfName produced model.encoder.layers.0.self_attn.q_proj.scale, which is not a Whisper parameter.
  auto m = ImportWhisper(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unknown tensor 'model.encoder.layers.0.self_attn.q_proj.scale'"),
            std::string::npos)
      << m.status().message();
}

TEST_F(WhisperErrors, KeyBiasMustBeZero) {
  f.weights["decoder.blocks.1.attn.key.bias"] = std::vector<float>(8, 0.0f);
  {
    const std::string dir = FreshDir("key_bias_zero");
    WriteWhisperFolder(f, o, dir);
    auto m = ImportWhisper(dir);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_TRUE(HasNote(*m, "dropped the all-zero key bias model.decoder.layers.1.self_attn.k_proj.bias"));
    EXPECT_EQ(FindTensor(*m, "decoder.blocks.1.attn.key.bias"), nullptr);
  }
  f.weights["decoder.blocks.1.attn.key.bias"][3] = 0.5f;
  ExpectError("key_bias_nonzero",
              "'model.decoder.layers.1.self_attn.k_proj.bias' ('decoder.blocks.1.attn.key.bias') is not zero");
}

TEST_F(WhisperErrors, UntiedProjection) {
  const std::string dir = FreshDir("untied");
  WriteWhisperFolder(f, o, dir);
  // Rewrite the single file with a different proj_out.
  std::vector<SafeTensorToWrite> tensors;
  for (const auto& [name, values] : f.weights)
    tensors.push_back(MakeSafeTensor(HfName(name), ShapeOf(f.hp, name), values));
  std::vector<float> proj = f.weights.at("decoder.token_embedding.weight");
  proj[0] += 1.0f;
  tensors.push_back(MakeSafeTensor("proj_out.weight", ShapeOf(f.hp, "decoder.token_embedding.weight"), proj));
  ASSERT_TRUE(WriteSafeTensors(dir + "/model.safetensors", tensors).ok());
  auto m = ImportWhisper(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("untied output projections are not supported"), std::string::npos);
}

TEST_F(WhisperErrors, MissingTensorAndWrongShape) {
  auto weights = f.weights;
  f.weights.erase("decoder.blocks.0.mlp.0.bias");
  ExpectError("missing", "the checkpoint lacks tensor 'decoder.blocks.0.mlp.0.bias'");
  f.weights = weights;
  f.config["max_source_positions"] = 13;  // the conv/positional shapes no longer fit
  ExpectError("shape",
              "'model.encoder.embed_positions.weight' ('encoder.positional_embedding') has shape [12, 8]; "
              "these hyper-parameters need [13, 8]");
}

TEST_F(WhisperErrors, ConfigProblems) {
  f.config["encoder_ffn_dim"] = 24;
  ExpectError("ffn", "feed-forward width must be 4 x d_model");
  f.config["encoder_ffn_dim"] = 32;
  f.config["activation_function"] = "relu";
  ExpectError("activation", "activation_function \"relu\" is not supported");
  f.config["activation_function"] = "gelu";
  f.config.erase("num_mel_bins");
  ExpectError("no_mels", "\"num_mel_bins\" is missing");
  f.config["num_mel_bins"] = 8;
  f.config["encoder_attention_heads"] = 3;
  ExpectError("heads", "n_audio_state 8 is not divisible by n_audio_head 3");
}

TEST_F(WhisperErrors, TooLargeIsRefusedBeforeReading) {
  f.config["d_model"] = 2048;
  f.config["encoder_ffn_dim"] = f.config["decoder_ffn_dim"] = 8192;
  f.config["encoder_layers"] = f.config["decoder_layers"] = 40;
  f.config["encoder_attention_heads"] = f.config["decoder_attention_heads"] = 16;
  ExpectError("too_large", "over the 2 GB limit");
}

TEST_F(WhisperErrors, TokenizerProblems) {
  f.config["vocab_size"] = f.hp.n_vocab - 1600;  // the listed special tokens no longer fit
  ExpectError("ids_beyond_vocab", "outside vocab_size");
  f.config["vocab_size"] = f.hp.n_vocab;
  f.generation["no_timestamps_token_id"] = f.no_timestamps + 3;
  ExpectError("disagree", "no_timestamps_token_id");
}

TEST_F(WhisperErrors, NoWeightsFile) {
  const std::string dir = FreshDir("no_weights");
  WriteWhisperFolder(f, o, dir);
  std::filesystem::remove(dir + "/model.safetensors");
  WriteText(dir + "/pytorch_model.bin", "x");
  auto m = ImportWhisper(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("PyTorch pickles are not read"), std::string::npos) << m.status().message();
  EXPECT_FALSE(ImportWhisper(dir + "/nope").ok());
}

}  // namespace
}  // namespace earshot
