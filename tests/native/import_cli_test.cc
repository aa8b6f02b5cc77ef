// `earshot import` and `earshot inspect` end to end, through the built CLI (exit codes, output).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

const std::string kCli = std::string(EARSHOT_BINARY_DIR) + "/earshot";

RunResult RunCli(const std::string& args) {
  RunResult r;
  std::FILE* p = popen((kCli + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kCli)) GTEST_SKIP() << kCli << " is not built (build the 'earshot' target)";
  }
};

TEST_F(Cli, ImportThenInspect) {
  const std::string dir = FreshDir("cli_ckpt");
  WriteCheckpointFolder(MakeCheckpointFolder(1), dir);
  const std::string out = dir + "/m.earshot";
  RunResult r = RunCli("import checkpoint " + dir + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;

  r = RunCli("inspect " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* needle : {"schema:      1.0", "earshot-tiny", "n_vocab 40", "sentencepiece, 40 tokens",
                             "encoder.conv1.weight", "f16", "totals:", "WER:", "alignment heads  1:0 1:1"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }

  r = RunCli("inspect --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["schema_version"], "1.0");
  EXPECT_EQ(j["hparams"]["n_vocab"], 40);
  EXPECT_EQ(j["special_tokens"]["sot"]["id"], 1);
  EXPECT_TRUE(j["special_tokens"]["translate"].is_null());
  EXPECT_EQ(j["card"]["extra"]["steps"], 1000);
  EXPECT_EQ(j["tensors"].size(), j["totals"]["all"]["tensors"].get<size_t>());
  EXPECT_EQ(j["totals"]["all"]["bytes"].get<uint64_t>(),
            j["totals"]["f16"]["bytes"].get<uint64_t>() + j["totals"]["f32"]["bytes"].get<uint64_t>());

  r = RunCli("import checkpoint " + dir + " -o " + dir + "/m32.earshot --dtype f32");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_GT(std::filesystem::file_size(dir + "/m32.earshot"), std::filesystem::file_size(out));
}

TEST_F(Cli, WhisperImport) {
  WhisperFolderOptions o;
  const std::string dir = FreshDir("cli_whisper");
  WriteWhisperFolder(MakeWhisperFolder(o, 2), o, dir);
  RunResult r = RunCli("import whisper " + dir + " -o " + dir + "/w.earshot");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("note: dropped encoder.positional_embedding"), std::string::npos) << r.out;
  r = RunCli("inspect " + dir + "/w.earshot");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("timestamp_begin"), std::string::npos);
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
  RunResult r = RunCli("inspect " + dir + "/missing.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no such file"), std::string::npos) << r.out;
  WriteText(dir + "/junk.earshot", std::string(64, 'x'));
  r = RunCli("inspect " + dir + "/junk.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not an .earshot model"), std::string::npos) << r.out;
  r = RunCli("import checkpoint " + dir + " -o " + dir + "/out.earshot");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("config.json' is missing"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.earshot"));
}

}  // namespace
}  // namespace earshot
