// `earshot transcribe` and `earshot dump` end to end through the built CLI: output formats, exit codes and the
// errors a user meets with bad models and bad audio.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "native/cli_runner.h"
#include "native/import_test_util.h"

namespace earshot {
namespace {

using namespace importtest;  // NOLINT: test helpers

using clitest::CliResult;
using clitest::RunCli;

// 16-bit PCM WAV of a few tones, `channels` interleaved.
std::string PcmWav(int sample_rate, int channels, double seconds) {
  const uint32_t frames = static_cast<uint32_t>(sample_rate * seconds);
  std::string pcm;
  for (uint32_t i = 0; i < frames; ++i) {
    const double t = static_cast<double>(i) / sample_rate;
    const double v = 0.3 * std::sin(2 * M_PI * 220 * t) + 0.2 * std::sin(2 * M_PI * 1250 * t * (1 + t));
    for (int c = 0; c < channels; ++c) {
      const int16_t s = static_cast<int16_t>(std::lround(v * 32767 * (c ? 0.5 : 1.0)));
      pcm.append(reinterpret_cast<const char*>(&s), 2);
    }
  }
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
  const uint16_t block = static_cast<uint16_t>(2 * channels);
  return "RIFF" + u32(36 + static_cast<uint32_t>(pcm.size())) + "WAVEfmt " + u32(16) + u16(1) +
         u16(static_cast<uint16_t>(channels)) + u32(static_cast<uint32_t>(sample_rate)) +
         u32(static_cast<uint32_t>(sample_rate) * block) + u16(block) + u16(16) + "data" +
         u32(static_cast<uint32_t>(pcm.size())) + pcm;
}

class TranscribeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!clitest::CliBuilt()) GTEST_SKIP() << clitest::CliPath() << " is not built (build the 'earshot' target)";
    dir_ = FreshDir("cli_transcribe");
    std::filesystem::create_directories(dir_ + "/ckpt");
    WriteCheckpointFolder(MakeCheckpointFolder(3), dir_ + "/ckpt");
    model_ = dir_ + "/m.earshot";
    const CliResult r = RunCli("import checkpoint " + dir_ + "/ckpt -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.all;
    wav_ = dir_ + "/tone.wav";
    WriteText(wav_, PcmWav(44100, 2, 1.5));
  }
  std::string dir_, model_, wav_;
};

TEST_F(TranscribeCli, JsonCarriesTokensTimingsAndTheSameTextAsPlainOutput) {
  CliResult plain = RunCli("transcribe --model " + model_ + " --beam 2 " + wav_);
  ASSERT_EQ(plain.exit_code, 0) << plain.all;
  CliResult json = RunCli("transcribe --model " + model_ + " --beam 2 --json " + wav_);
  ASSERT_EQ(json.exit_code, 0) << json.all;
  const Json j = Json::parse(json.out);
  for (const char* key : {"text", "segments", "tokens", "no_speech_prob", "avg_logprob", "timings", "audio_seconds"}) {
    EXPECT_TRUE(j.contains(key)) << key << "\n" << json.out;
  }
  EXPECT_EQ(j["text"].get<std::string>() + "\n", plain.out);
  EXPECT_NEAR(j["audio_seconds"].get<double>(), 1.5, 1e-3);
  for (const auto& t : j["tokens"]) {
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_GE(t["id"].get<int>(), 0);
  }
  const double p = j["no_speech_prob"].get<double>();
  EXPECT_TRUE(p >= 0.0 && p <= 1.0) << p;
  for (const char* key : {"load_ms", "mel_ms", "encode_ms", "decode_ms", "total_ms"}) {
    EXPECT_GE(j["timings"][key].get<double>(), 0.0) << key;
  }
}

TEST_F(TranscribeCli, GreedyIsDeterministic) {
  const CliResult a = RunCli("transcribe --model " + model_ + " --beam 1 --json " + wav_);
  const CliResult b = RunCli("transcribe --model " + model_ + " --beam 1 --json " + wav_);
  ASSERT_EQ(a.exit_code, 0) << a.all;
  EXPECT_EQ(Json::parse(a.out)["tokens"], Json::parse(b.out)["tokens"]);
}

TEST_F(TranscribeCli, DumpWritesWhatItDescribes) {
  const std::string out = dir_ + "/dump";
  const std::string short_wav = dir_ + "/short.wav";  // dump takes one encoder window (0.48 s for this model)
  WriteText(short_wav, PcmWav(16000, 1, 0.4));
  const CliResult r = RunCli(
      "dump --model " + model_ + " --audio " + short_wav + " --out " + out + " --tokens 1,5,6 --beam 2");
  ASSERT_EQ(r.exit_code, 0) << r.all;
  std::ifstream f(out + "/dump.json");
  const Json j = Json::parse(std::string(std::istreambuf_iterator<char>(f), {}));
  for (const char* key : {"mel", "encoder", "logits"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    size_t count = 1;
    for (const auto& d : j[key]["shape"]) count *= d.get<size_t>();
    EXPECT_EQ(std::filesystem::file_size(out + "/" + j[key]["file"].get<std::string>()), 4 * count) << key;
  }
  EXPECT_EQ(j["logits"]["shape"][0].get<int>(), 3);
  EXPECT_TRUE(std::filesystem::exists(out + "/beam.json"));
}

TEST_F(TranscribeCli, BadInputGivesAClearErrorAndExitCode) {
  EXPECT_EQ(RunCli("transcribe --help").exit_code, 0);
  EXPECT_EQ(RunCli("transcribe").exit_code, 2);
  EXPECT_EQ(RunCli("transcribe --model " + model_).exit_code, 2);  // no audio
  EXPECT_EQ(RunCli("transcribe --model " + model_ + " --beam 0 " + wav_).exit_code, 2);
  EXPECT_EQ(RunCli("transcribe --model " + model_ + " --beam x " + wav_).exit_code, 2);
  EXPECT_EQ(RunCli("transcribe --model " + model_ + " --frobnicate " + wav_).exit_code, 2);

  struct Case {
    std::string file, contents, needle;
  };
  const std::string wav = PcmWav(16000, 1, 0.5);
  const Case cases[] = {
      {"empty.wav", "", "empty"},
      {"text.wav", "hello, this is not audio at all", "RIFF"},
      {"truncated.wav", wav.substr(0, wav.size() / 2), "truncated"},
      {"header_only.wav", wav.substr(0, 44 - 4) + std::string("\0\0\0\0", 4), "no audio samples"},
  };
  for (const Case& c : cases) {
    WriteText(dir_ + "/" + c.file, c.contents);
    const CliResult r = RunCli("transcribe --model " + model_ + " " + dir_ + "/" + c.file);
    EXPECT_EQ(r.exit_code, 1) << c.file << ": " << r.all;
    EXPECT_NE(r.all.find(c.needle), std::string::npos) << c.file << ": " << r.all;
  }

  CliResult r = RunCli("transcribe --model " + dir_ + "/missing.earshot " + wav_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("no such file"), std::string::npos) << r.all;
  WriteText(dir_ + "/junk.earshot", std::string(256, '\x5a'));
  r = RunCli("transcribe --model " + dir_ + "/junk.earshot " + wav_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.all.find("not an .earshot model"), std::string::npos) << r.all;
  r = RunCli("transcribe --model " + model_ + " --timestamps " + wav_);  // the model has no timestamp tokens
  EXPECT_EQ(r.exit_code, 1) << r.all;
  EXPECT_NE(r.all.find("timestamp"), std::string::npos) << r.all;
}

}  // namespace
}  // namespace earshot
