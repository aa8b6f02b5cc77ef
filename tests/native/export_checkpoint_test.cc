// `earshot export` / ExportCheckpoint: a model file back to a float checkpoint folder, and on to the same file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "kernels/qgemm.h"
#include "native/cli_runner.h"
#include "native/import_test_util.h"
#include "quantize/import_util.h"
#include "quantize/tokenizer_import.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

ImportOptions Options(DType dtype, int group_size = 8) {
  ImportOptions o;
  o.matrix_dtype = dtype;
  o.group_size = group_size;
  return o;
}

std::vector<uint8_t> Serialized(const ImportedModel& m) {
  auto bytes = SerializeModel(m.meta, m.tensors);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  if (!bytes.ok()) return {};
  return std::vector<uint8_t>(bytes->data(), bytes->data() + bytes->size());
}

std::shared_ptr<const Model> Load(const ImportedModel& m) {
  auto bytes = SerializeModel(m.meta, m.tensors);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  auto model = Model::FromBuffer(std::move(*bytes));
  EXPECT_TRUE(model.ok()) << model.status().message();
  return model.ok() ? *model : nullptr;
}

// Imports `source` with `options`, exports the file, imports the export with the same options: the two files must
// be the same bytes (metadata, vocabulary and every quantized value and scale).
void ExpectRoundTrip(const std::string& source, const ImportOptions& options, bool whisper = false) {
  auto first = whisper ? ImportWhisper(source, options) : ImportCheckpoint(source, options);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto model = Load(*first);
  ASSERT_NE(model, nullptr);
  const std::string exported = FreshDir("export_" + std::string(DTypeName(options.matrix_dtype)));
  const Status s = ExportCheckpoint(*model, exported);
  ASSERT_TRUE(s.ok()) << s.message();
  auto second = ImportCheckpoint(exported, options);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(Serialized(*first), Serialized(*second)) << "dtype " << DTypeName(options.matrix_dtype);
}

TEST(ExportCheckpoint, ImportExportImportGivesTheSameFile) {
  const std::string dir = FreshDir("export_source");
  WriteCheckpointFolder(MakeCheckpointFolder(3), dir);
  for (DType dtype : {DType::F32, DType::F16, DType::I8, DType::I4}) ExpectRoundTrip(dir, Options(dtype));
}

TEST(ExportCheckpoint, WhisperModelsRoundTripWithTheirByteLevelVocabulary) {
  WhisperFolderOptions o;
  o.multilingual = true;
  const std::string dir = FreshDir("export_whisper");
  WriteWhisperFolder(MakeWhisperFolder(o, 4), o, dir);
  ExpectRoundTrip(dir, Options(DType::F16), /*whisper=*/true);
  ExpectRoundTrip(dir, Options(DType::I4, 16), /*whisper=*/true);
}

TEST(ExportCheckpoint, ValuesAreTheWeightsOrTheirDequantizedValues) {
  const CheckpointFolder f = MakeCheckpointFolder(5);
  const std::string dir = FreshDir("export_values_source");
  WriteCheckpointFolder(f, dir);
  for (DType dtype : {DType::F32, DType::I4}) {
    auto imported = ImportCheckpoint(dir, Options(dtype));
    ASSERT_TRUE(imported.ok()) << imported.status().message();
    auto model = Load(*imported);
    ASSERT_NE(model, nullptr);
    const std::string out = FreshDir("export_values");
    ASSERT_TRUE(ExportCheckpoint(*model, out).ok());
    auto file = SafeTensorsFile::Open(out + "/model.safetensors");
    ASSERT_TRUE(file.ok()) << file.status().message();
    for (const auto& [name, source] : f.weights) {
      const SafeTensorInfo* info = file->Find(name);
      ASSERT_NE(info, nullptr) << name;
      EXPECT_EQ(info->dtype, "F32");
      EXPECT_EQ(info->shape, ShapeOf(f.hp, name)) << name;
      auto values = file->ReadFloat32(name);
      ASSERT_TRUE(values.ok());
      ASSERT_EQ(values->size(), source.size());
      const TensorRef* t = model->Find(name);
      ASSERT_NE(t, nullptr) << name;
      // The stored scales: int8 per row, int4 per group of 8 along a row.
      const int rows = static_cast<int>(info->shape[0]);
      const int cols = static_cast<int>(source.size()) / rows;
      QWeights q;
      const bool quantized = t->dtype == DType::I8 || t->dtype == DType::I4;
      if (quantized) {
        auto view = QWeightsFromTensor(*t, rows, cols);
        ASSERT_TRUE(view.ok()) << view.status().message();
        q = *view;
      }
      for (size_t i = 0; i < source.size(); ++i) {
        if (!quantized) {
          const float stored = t->dtype == DType::F16 ? F16ToF32(F32ToF16(source[i])) : source[i];
          ASSERT_EQ((*values)[i], stored) << name << "[" << i << "]";
          continue;
        }
        const int row = static_cast<int>(i) / cols, col = static_cast<int>(i) % cols;
        const bool int4 = t->dtype == DType::I4;
        const float scale = QWeightScale(q, row, int4 ? col / t->group_size : 0);
        ASSERT_TRUE(OnQuantizationGrid(source[i], (*values)[i], scale, int4 ? -8 : -127, int4 ? 7 : 127))
            << name << "[" << i << "] " << source[i] << " -> " << (*values)[i] << ", step " << scale;
      }
    }
  }
}

TEST(ExportCheckpoint, ConfigAndTokenizerCarryEverything) {
  CheckpointFolder f = MakeCheckpointFolder(6);
  f.config["edge_silence_ms"] = 250;
  const std::string dir = FreshDir("export_config_source");
  WriteCheckpointFolder(f, dir);
  auto imported = ImportCheckpoint(dir, Options(DType::F16));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  auto model = Load(*imported);
  const std::string out = FreshDir("export_config");
  ASSERT_TRUE(ExportCheckpoint(*model, out).ok());
  auto config = ReadJsonFile(out + "/config.json");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)["format"], "earshot-checkpoint");
  EXPECT_EQ((*config)["dims"]["n_vocab"], 40);
  EXPECT_EQ((*config)["dims"]["conv1_stride"], 1);
  EXPECT_EQ((*config)["edge_silence_ms"], 250);
  EXPECT_EQ((*config)["variable_length_audio"], true);
  EXPECT_EQ((*config)["special_tokens"], (Json{{"sot", 1}, {"eot", 2}, {"transcribe", 6}}));
  EXPECT_EQ((*config)["languages"], f.config["languages"]);
  EXPECT_EQ((*config)["suppress_tokens"], f.config["suppress_tokens"]);
  EXPECT_EQ((*config)["begin_suppress_tokens"], f.config["begin_suppress_tokens"]);
  EXPECT_EQ((*config)["alignment_heads"], f.config["alignment_heads"]);
  EXPECT_EQ((*config)["card"]["name"], "earshot-tiny");
  EXPECT_EQ((*config)["card"]["extra"], f.config["card"]["extra"]);
  EXPECT_EQ((*config)["card"]["wer"][0]["words"], 456);
  auto tokenizer = ReadJsonFile(out + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ(*tokenizer, f.tokenizer);  // every piece of this vocabulary has one spelling
}

TEST(ExportCheckpoint, SentencePieceSpellingInvertsTheBytes) {
  const std::vector<std::string> cases = {" the", "the", "a", " ", "\n", "\xFF", "\xE2\x82", "\xC3\xA9t\xC3\xA9", "  two"};
  for (const std::string& bytes : cases) {
    EXPECT_EQ(SentencePieceToBytes(BytesToSentencePiece(bytes)), bytes);
  }
  EXPECT_EQ(BytesToSentencePiece("\n"), "<0x0A>");
  EXPECT_EQ(ByteFallbackPiece(0xE2), "<0xE2>");
  EXPECT_EQ(BytesToSentencePiece(" the"), "\xE2\x96\x81the");
}

TEST(ExportCheckpoint, SentencePieceByteFallbackBlockKeepsItsSpelling) {
  // A vocabulary laid out as SentencePiece's byte-fallback models are: controls, 256 byte pieces, merges and
  // characters (among them "a" and " ", which print the same bytes as <0x61> and <0x20>).
  CheckpointFolder f = MakeCheckpointFolder(9);
  Json pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) pieces.push_back(ByteFallbackPiece(static_cast<unsigned char>(b)));
  for (const char* p : {"\xE2\x96\x81the", "a", "\xE2\x96\x81", "\xC3\xA9"}) pieces.push_back(p);
  f.hp.n_vocab = static_cast<int>(pieces.size());
  f.config["dims"]["n_vocab"] = f.hp.n_vocab;
  f.config["languages"] = Json::array();
  f.config["special_tokens"] = {{"sot", 1}, {"eot", 2}};
  f.tokenizer = {{"kind", "sentencepiece"}, {"pieces", pieces}, {"special_ids", {0, 1, 2}}};
  f.weights = RandomCanonicalWeights(f.hp, 9, /*with_audio_positions=*/false);
  const std::string dir = FreshDir("export_bytes_source");
  WriteCheckpointFolder(f, dir);
  auto imported = ImportCheckpoint(dir, Options(DType::F16));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  auto model = Load(*imported);
  ASSERT_NE(model, nullptr);
  const std::string out = FreshDir("export_bytes");
  ASSERT_TRUE(ExportCheckpoint(*model, out).ok());
  auto tokenizer = ReadJsonFile(out + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)["pieces"], pieces);
}

TEST(ExportCheckpoint, CliWritesAFolderThatImportsBackToTheSameFile) {
  if (!clitest::CliBuilt()) GTEST_SKIP() << clitest::CliPath() << " is not built";
  const std::string dir = FreshDir("export_cli");
  WriteCheckpointFolder(MakeCheckpointFolder(7), dir);
  ASSERT_EQ(clitest::RunCli("import checkpoint " + dir + " -o " + dir + "/a.earshot --dtype int4 --group-size 8")
                .exit_code,
            0);
  clitest::CliResult r = clitest::RunCli("export " + dir + "/a.earshot -o " + dir + "/new/exported");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  EXPECT_NE(r.all.find("wrote " + dir + "/new/exported"), std::string::npos) << r.all;
  r = clitest::RunCli("import checkpoint " + dir + "/new/exported -o " + dir + "/b.earshot --dtype int4 --group-size 8");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(dir + "/a.earshot"), read(dir + "/b.earshot"));
}

TEST(ExportCheckpoint, CliErrors) {
  if (!clitest::CliBuilt()) GTEST_SKIP() << clitest::CliPath() << " is not built";
  const std::string dir = FreshDir("export_cli_errors");
  EXPECT_EQ(clitest::RunCli("export --help").exit_code, 0);
  EXPECT_EQ(clitest::RunCli("export").exit_code, 2);
  EXPECT_EQ(clitest::RunCli("export " + dir + "/m.earshot").exit_code, 2);  // no -o
  EXPECT_EQ(clitest::RunCli("export a b -o x").exit_code, 2);
  EXPECT_EQ(clitest::RunCli("export --bogus").exit_code, 2);

  clitest::CliResult r = clitest::RunCli("export " + dir + "/missing.earshot -o " + dir + "/out");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("missing.earshot"), std::string::npos) << r.all;

  WriteText(dir + "/corrupt.earshot", std::string(200, 'x'));
  r = clitest::RunCli("export " + dir + "/corrupt.earshot -o " + dir + "/out");
  EXPECT_EQ(r.exit_code, 1) << r.all;
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/model.safetensors"));

  // The output path is a file, not a folder.
  WriteCheckpointFolder(MakeCheckpointFolder(8), dir);
  ASSERT_EQ(clitest::RunCli("import checkpoint " + dir + " -o " + dir + "/m.earshot").exit_code, 0);
  WriteText(dir + "/taken", "x");
  r = clitest::RunCli("export " + dir + "/m.earshot -o " + dir + "/taken");
  EXPECT_EQ(r.exit_code, 1) << r.all;
  EXPECT_NE(r.all.find("not a directory"), std::string::npos) << r.all;
  r = clitest::RunCli("export " + dir + "/m.earshot -o " + dir + "/taken/below");
  EXPECT_EQ(r.exit_code, 1) << r.all;
  EXPECT_NE(r.all.find("cannot create"), std::string::npos) << r.all;
}

}  // namespace
}  // namespace earshot
