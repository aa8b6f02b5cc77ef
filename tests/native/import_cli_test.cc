// `earshot import` and `earshot inspect` end to end, through the built CLI (exit codes, output).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "native/cli_runner.h"
#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

using clitest::RunCli;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!clitest::CliBuilt()) GTEST_SKIP() << clitest::CliPath() << " is not built (build the 'earshot' target)";
  }
};

TEST_F(Cli, ImportThenInspect) {
  const std::string dir = FreshDir("cli_ckpt");
  WriteCheckpointFolder(MakeCheckpointFolder(1), dir);
  const std::string out = dir + "/m.earshot";
  clitest::CliResult r = RunCli("import checkpoint " + dir + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all;
  EXPECT_NE(r.all.find("wrote " + out), std::string::npos) << r.all;

  r = RunCli("inspect " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all;
  for (const char* needle : {"schema:      1.2", "earshot-tiny", "n_vocab 40", "sentencepiece, 40 tokens",
                             "encoder.conv1.weight", "f16", "totals:", "WER:", "alignment heads  1:0 1:1"}) {
    EXPECT_NE(r.all.find(needle), std::string::npos) << needle << "\n" << r.all;
  }

  r = RunCli("inspect --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["schema_version"], "1.2");
  EXPECT_EQ(j["hparams"]["n_vocab"], 40);
  EXPECT_EQ(j["special_tokens"]["sot"]["id"], 1);
  EXPECT_TRUE(j["special_tokens"]["translate"].is_null());
  EXPECT_EQ(j["card"]["extra"]["steps"], 1000);
  EXPECT_EQ(j["tensors"].size(), j["totals"]["all"]["tensors"].get<size_t>());
  EXPECT_EQ(j["totals"]["all"]["bytes"].get<uint64_t>(),
            j["totals"]["f16"]["bytes"].get<uint64_t>() + j["totals"]["f32"]["bytes"].get<uint64_t>());

  r = RunCli("import checkpoint " + dir + " -o " + dir + "/m32.earshot --dtype f32");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  EXPECT_GT(std::filesystem::file_size(dir + "/m32.earshot"), std::filesystem::file_size(out));
}

TEST_F(Cli, WhisperImport) {
  WhisperFolderOptions o;
  const std::string dir = FreshDir("cli_whisper");
  WriteWhisperFolder(MakeWhisperFolder(o, 2), o, dir);
  clitest::CliResult r = RunCli("import whisper " + dir + " -o " + dir + "/w.earshot");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  EXPECT_NE(r.all.find("note: dropped encoder.positional_embedding"), std::string::npos) << r.all;
  r = RunCli("inspect " + dir + "/w.earshot");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  EXPECT_NE(r.all.find("timestamp_begin"), std::string::npos);
}

TEST_F(Cli, ErrorsAndUsage) {
  EXPECT_EQ(RunCli("import --help").exit_code, 0);
  EXPECT_EQ(RunCli("inspect --help").exit_code, 0);
  EXPECT_EQ(RunCli("import").exit_code, 2);
  EXPECT_EQ(RunCli("import whisper /tmp").exit_code, 2);  // no -o
  EXPECT_EQ(RunCli("import onnx /tmp -o x").exit_code, 2);
  EXPECT_EQ(RunCli("import whisper /tmp -o x --dtype i8").exit_code, 2);
  EXPECT_EQ(RunCli("inspect").exit_code, 2);
  EXPECT_EQ(RunCli("inspect a b").exit_code, 2);
  EXPECT_EQ(RunCli("inspect --bogus x").exit_code, 2);

  const std::string dir = FreshDir("cli_errors");
  clitest::CliResult r = RunCli("inspect " + dir + "/missing.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("no such file"), std::string::npos) << r.all;
  WriteText(dir + "/junk.earshot", std::string(64, 'x'));
  r = RunCli("inspect " + dir + "/junk.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("not an .earshot model"), std::string::npos) << r.all;
  r = RunCli("import checkpoint " + dir + " -o " + dir + "/out.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("config.json' is missing"), std::string::npos) << r.all;
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.earshot"));
}

}  // namespace
}  // namespace earshot
