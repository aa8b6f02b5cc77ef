// The safetensors reader/writer and the tokenizer conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

std::string WriteRaw(const std::string& name, const std::string& header, const std::string& data) {
  const std::string path = FreshDir("safetensors_" + name) + "/x.safetensors";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  WriteText(path, bytes + header + data);
  return path;
}

Status OpenStatus(const std::string& path) {
  auto f = SafeTensorsFile::Open(path);
  return f.ok() ? Status::Ok() : f.status();
}

TEST(SafeTensors, RoundTripAllFloatTypes) {
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 3.14159f, 1e-3f, -65504.0f};
  const std::string path = FreshDir("safetensors_roundtrip") + "/t.safetensors";
  ASSERT_TRUE(
      WriteSafeTensors(path,
                       {MakeSafeTensor("a.f32", {2, 3}, values, "F32"), MakeSafeTensor("b.f16", {6}, values, "F16"),
                        MakeSafeTensor("c.bf16", {3, 2}, values, "BF16"),
                        MakeSafeTensor("d.f64", {1, 6}, values, "F64"), MakeSafeTensor("e.empty", {0, 4}, {}, "F32")},
                       {{"format", "pt"}})
          .ok());
  auto f = SafeTensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 5u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_NE(f->Find("c.bf16"), nullptr);
  EXPECT_EQ(f->Find("c.bf16")->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(f->Find("c.bf16")->dtype, "BF16");
  EXPECT_EQ(f->ReadFloat32("a.f32").value(), values);
  EXPECT_EQ(f->ReadFloat32("d.f64").value(), values);
  const std::vector<float> half = f->ReadFloat32("b.f16").value();
  const std::vector<float> bf = f->ReadFloat32("c.bf16").value();
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_NEAR(half[i], values[i], std::fabs(values[i]) * 1e-3f);
    EXPECT_NEAR(bf[i], values[i], std::fabs(values[i]) * 8e-3f);
  }
  EXPECT_TRUE(f->ReadFloat32("e.empty")->empty());
  EXPECT_FALSE(f->ReadFloat32("missing").ok());
}

TEST(SafeTensors, HeaderErrors) {
  EXPECT_NE(OpenStatus(FreshDir("st_none") + "/none.safetensors").message().find("No such file"), std::string::npos);
  const std::string short_path = FreshDir("st_short") + "/s.safetensors";
  WriteText(short_path, "abc");
  EXPECT_NE(OpenStatus(short_path).message().find("file too short"), std::string::npos);

  // Declared header length beyond the file.
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(0xFF);
  bytes[3] = 0x7F;
  const std::string huge = FreshDir("st_huge") + "/h.safetensors";
  WriteText(huge, bytes + "{}");
  EXPECT_NE(OpenStatus(huge).message().find("does not fit"), std::string::npos);

  EXPECT_NE(OpenStatus(WriteRaw("badjson", "{\"a\": [1, 2", "")).message().find("not valid JSON"), std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("array", "[1, 2, 3]", "")).message().find("not a JSON object"), std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("range", R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "1234"))
                .message()
                .find("fall outside the 4-byte data section"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("size", R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678"))
                .message()
                .find("8 bytes for F32 shape of 3 elements"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("dtype", R"({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", "12"))
                .message()
                .find("unknown dtype 'Q4'"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("neg", R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", ""))
                .message()
                .find("not a size"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("offsets", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "1234"))
                .message()
                .find("data_offsets"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("overlap",
                                R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                "12345678"))
                .message()
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(OpenStatus(WriteRaw("entry", R"({"w": 5})", "")).message().find("not an object"), std::string::npos);

  auto ints = SafeTensorsFile::Open(
      WriteRaw("ints", R"({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0')));
  ASSERT_TRUE(ints.ok()) << ints.status().message();
  EXPECT_NE(ints->ReadFloat32("w").status().message().find("only F32, F16, BF16 and F64"), std::string::npos);
  EXPECT_EQ(ints->ReadRaw("w")->size(), 8u);
}

TEST(ModelFile, LargerThan2GBIsRefusedBeforeReading) {
  const std::string path = FreshDir("model_huge") + "/huge.earshot";
  WriteText(path, "x");
  std::filesystem::resize_file(path, (uint64_t{1} << 31) + 16);  // sparse: no disk space used
  auto model = Model::FromFile(path);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("limited to 2 GB"), std::string::npos) << model.status().message();
  std::filesystem::remove(path);
}

TEST(Tokenizers, ByteLevelMapsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string spelled = BytesToByteLevel(all);
  EXPECT_EQ(ByteLevelToBytes(spelled), all);
  EXPECT_EQ(BytesToByteLevel(" "), "\xC4\xA0");   // 'Ġ'
  EXPECT_EQ(BytesToByteLevel("\n"), "\xC4\x8A");  // 'Ċ'
  EXPECT_EQ(BytesToByteLevel("a!~"), "a!~");      // printable ASCII maps to itself
  EXPECT_EQ(ByteLevelToBytes("\xC4\xA0world"), " world");
  // Two byte-level characters making one UTF-8 character: 'Ã©' -> "é".
  EXPECT_EQ(ByteLevelToBytes("\xC3\x83\xC2\xA9"), "\xC3\xA9");
  // Characters outside the table (e.g. in added tokens) keep their UTF-8; invalid bytes pass through.
  EXPECT_EQ(ByteLevelToBytes("\xE2\x96\x81x"), "\xE2\x96\x81x");
  EXPECT_EQ(ByteLevelToBytes(std::string("\xFF", 1)), std::string("\xFF", 1));
}

TEST(Tokenizers, SentencePiecePieces) {
  EXPECT_EQ(SentencePieceToBytes("\xE2\x96\x81the"), " the");
  EXPECT_EQ(SentencePieceToBytes("a\xE2\x96\x81\xE2\x96\x81"), "a  ");
  EXPECT_EQ(SentencePieceToBytes("<0x0A>"), "\n");
  EXPECT_EQ(SentencePieceToBytes("<0xe9>"), "\xE9");
  EXPECT_EQ(SentencePieceToBytes("<0x00>"), std::string(1, '\0'));
  EXPECT_EQ(SentencePieceToBytes("<0xZZ>"), "<0xZZ>");
  EXPECT_EQ(SentencePieceToBytes("<0x0A>b"), "<0x0A>b");
  EXPECT_EQ(SentencePieceToBytes("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(Tokenizers, CheckpointTokenizerByteLevel) {
  const std::string path = FreshDir("tok_bytelevel") + "/tokenizer.json";
  WriteJson(path,
            {{"kind", "bytelevel"}, {"pieces", {"<|endoftext|>", "\xC4\xA0hi", "\xC4\x8A"}}, {"special_ids", {0}}});
  auto v = LoadCheckpointTokenizer(path, 3);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->kind, TokenizerKind::ByteLevelBpe);
  EXPECT_EQ(v->tokens, (std::vector<std::string>{"<|endoftext|>", " hi", "\n"}));
  EXPECT_EQ(v->special_ids, std::vector<int>{0});
  WriteJson(path, {{"kind", "bytelevel"}, {"pieces", {"a", 5}}});
  EXPECT_NE(LoadCheckpointTokenizer(path, 2).status().message().find("piece 1 is not a string"), std::string::npos);
}

}  // namespace
}  // namespace earshot
