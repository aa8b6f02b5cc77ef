// earshot transcribe: WAV file in, text (or JSON with segments, tokens and timings) out.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "audio/wav.h"
#include "cli/commands.h"
#include "core/thread_pool.h"
#include "decode/detokenizer.h"
#include "decode/transcriber.h"
#include "model/model.h"

namespace earshot::cli {
namespace {

constexpr char kUsage[] =
    "usage: earshot transcribe --model M.earshot AUDIO.wav [options]\n"
    "\n"
    "Transcribes a WAV file (any rate and channel count; resampled to 16 kHz mono) and prints the text.\n"
    "\n"
    "options:\n"
    "  --model PATH      model file (.earshot)\n"
    "  --beam N          beam size, 1 = greedy (default 5)\n"
    "  --max-tokens N    most tokens generated per 30-s window (default: half the text context)\n"
    "  --timestamps      generate timestamp tokens and timed segments (models that have them)\n"
    "  --language CODE   language of the audio for multilingual models (default en)\n"
    "  --threads N       threads for the matrix products and attention (default 1; results are identical\n"
    "                    for every count)\n"
    "  --json            print JSON: text, segments, tokens with log-probs, no-speech probability, timings\n"
    "  -h, --help        show this help\n";

struct Args {
  std::string model, audio;
  DecodeOptions options;
  int threads = 1;
  bool json = false;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "earshot transcribe: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

bool ParseInt(const char* s, int lo, int hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// Returns -1 when parsing succeeded, else the exit code.
int ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char** out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    const char* v = nullptr;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--model") {
      if (!value(&v)) return UsageError("--model needs a path");
      a->model = v;
    } else if (arg == "--beam") {
      if (!value(&v) || !ParseInt(v, 1, 64, &a->options.beam_size))
        return UsageError("--beam needs a number in 1..64");
    } else if (arg == "--max-tokens") {
      if (!value(&v) || !ParseInt(v, 1, 1 << 20, &a->options.max_new_tokens))
        return UsageError("--max-tokens needs a positive number");
    } else if (arg == "--language") {
      if (!value(&v) || !*v) return UsageError("--language needs a language code");
      a->options.language = v;
    } else if (arg == "--threads") {
      if (!value(&v) || !ParseInt(v, 1, MaxThreadCount(), &a->threads))
        return UsageError("--threads needs a number in 1.." + std::to_string(MaxThreadCount()));
    } else if (arg == "--timestamps") {
      a->options.timestamps = true;
    } else if (arg == "--json") {
      a->json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError("unknown option '" + arg + "'");
    } else if (a->audio.empty()) {
      a->audio = arg;
    } else {
      return UsageError("more than one audio file given");
    }
  }
  if (a->model.empty()) return UsageError("--model is required");
  if (a->audio.empty()) return UsageError("no audio file given");
  return -1;
}

double Ms(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int RunTranscribe(int argc, char** argv) {
  Args args;
  if (int rc = ParseArgs(argc, argv, &args); rc >= 0) return rc;
  if (Status s = SetThreadCount(args.threads); !s.ok()) {
    std::fprintf(stderr, "earshot transcribe: %s\n", s.message().c_str());
    return 1;
  }
  const auto t_start = std::chrono::steady_clock::now();

  auto model = Model::FromFile(args.model);
  if (!model.ok()) {
    std::fprintf(stderr, "earshot transcribe: %s\n", model.status().message().c_str());  // names the file
    return 1;
  }
  auto transcriber = Transcriber::Create(model.value());
  if (!transcriber.ok()) {
    std::fprintf(stderr, "earshot transcribe: %s: %s\n", args.model.c_str(),
                 transcriber.status().message().c_str());
    return 1;
  }
  const double load_ms = Ms(t_start);

  auto pcm = LoadAudio16k(args.audio);
  if (!pcm.ok()) {
    std::fprintf(stderr, "earshot transcribe: %s\n", pcm.status().message().c_str());  // names the file
    return 1;
  }
  auto result = transcriber->Transcribe(pcm->data(), pcm->size(), args.options);
  if (!result.ok()) {
    std::fprintf(stderr, "earshot transcribe: %s\n", result.status().message().c_str());
    return 1;
  }
  const Transcript& t = result.value();
  if (!args.json) {
    std::printf("%s\n", t.text.c_str());
    return 0;
  }
  using nlohmann::json;
  json out;
  out["text"] = t.text;
  out["segments"] = json::array();
  for (const Segment& s : t.segments) out["segments"].push_back({{"start", s.start}, {"end", s.end}, {"text", s.text}});
  out["tokens"] = json::array();
  for (const TokenInfo& tok : t.tokens)
    out["tokens"].push_back({{"id", tok.id}, {"text", SanitizeUtf8(tok.text)}, {"logprob", tok.logprob}});
  out["no_speech_prob"] = t.no_speech_prob;
  out["avg_logprob"] = t.avg_logprob;
  out["timings"] = {{"load_ms", load_ms},
                    {"mel_ms", t.mel_ms},
                    {"encode_ms", t.encode_ms},
                    {"decode_ms", t.decode_ms},
                    {"total_ms", Ms(t_start)}};
  out["audio_seconds"] = static_cast<double>(pcm->size()) / 16000.0;
  out["threads"] = ThreadCount();
  std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace earshot::cli
