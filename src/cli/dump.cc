// earshot dump: intermediate tensors for the parity tests (see the shared formats): the log-mel, the encoder
// output, teacher-forced decoder logits fed one token at a time through the KV cache, and a beam search with
// every finished hypothesis.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "audio/wav.h"
#include "cli/commands.h"
#include "decode/detokenizer.h"
#include "decode/transcriber.h"
#include "model/decoder.h"
#include "model/model.h"

namespace earshot::cli {
namespace {

using nlohmann::json;

constexpr char kUsage[] =
    "usage: earshot dump --model M.earshot --audio A.wav --out DIR [options]\n"
    "\n"
    "Writes intermediate results as raw little-endian float32 files plus DIR/dump.json describing them:\n"
    "  mel.f32      [n_mels, n_frames]     log-mel features (audio handled exactly as `transcribe` does)\n"
    "  encoder.f32  [positions, d]         encoder output after ln_post\n"
    "  logits.f32   [len(T), n_vocab]      with --tokens T: logits after each token, one token at a time\n"
    "  beam.json                           with --beam N: the beam search and every finished hypothesis\n"
    "\n"
    "options:\n"
    "  --tokens T        comma-separated token ids, prompt included\n"
    "  --beam N          run beam search with beam size N (1 = greedy)\n"
    "  --max-tokens N    most tokens the beam search generates (default: half the text context)\n"
    "  -h, --help        show this help\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "earshot dump: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "earshot dump: %s\n", message.c_str());
  return 1;
}

bool ParseInt(const std::string& s, long lo, long hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (errno || end == s.c_str() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

bool ParseTokens(const std::string& s, std::vector<int>* out) {
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    int id;
    if (!ParseInt(item, 0, 1 << 30, &id)) return false;
    out->push_back(id);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return !out->empty();
}

struct Args {
  std::string model, audio, out;
  std::vector<int> tokens;
  int beam = 0;
  int max_tokens = 0;
};

int ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--model") {
      if (!value(&a->model)) return UsageError("--model needs a path");
    } else if (arg == "--audio") {
      if (!value(&a->audio)) return UsageError("--audio needs a path");
    } else if (arg == "--out") {
      if (!value(&a->out)) return UsageError("--out needs a folder");
    } else if (arg == "--tokens") {
      if (!value(&v) || !ParseTokens(v, &a->tokens)) return UsageError("--tokens needs comma-separated token ids");
    } else if (arg == "--beam") {
      if (!value(&v) || !ParseInt(v, 1, 64, &a->beam)) return UsageError("--beam needs a number in 1..64");
    } else if (arg == "--max-tokens") {
      if (!value(&v) || !ParseInt(v, 1, 1 << 20, &a->max_tokens))
        return UsageError("--max-tokens needs a positive number");
    } else {
      return UsageError("unexpected argument '" + arg + "'");
    }
  }
  if (a->model.empty() || a->audio.empty() || a->out.empty()) return UsageError("--model, --audio and --out are required");
  return -1;
}

Status WriteFile(const std::string& path, const void* data, size_t bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status::Error("cannot write " + path);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!f) return Status::Error("error writing " + path);
  return Status::Ok();
}

Status WriteJson(const std::string& path, const json& j) {
  const std::string text = j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return WriteFile(path, text.data(), text.size());
}

// Writes a float32 tensor and records it in dump.json. The engine stores floats little-endian on every
// supported target (x86-64, wasm32).
Status WriteTensor(const std::string& dir, const std::string& key, const float* data, std::vector<int64_t> shape,
                   json* index) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  const std::string file = key + ".f32";
  EARSHOT_RETURN_IF_ERROR(WriteFile(dir + "/" + file, data, n * sizeof(float)));
  (*index)[key] = {{"file", file}, {"shape", shape}};
  return Status::Ok();
}

json HypothesisJson(const Hypothesis& h) {
  return {{"tokens", h.tokens}, {"sum_logprob", h.sum_logprob}, {"score", h.score},
          {"token_logprobs", h.token_logprobs}, {"ended_with_eot", h.ended_with_eot}};
}

Status Run(const Args& args) {
  auto model_or = Model::FromFile(args.model);
  if (!model_or.ok()) return model_or.status();  // the message names the file
  std::shared_ptr<const Model> model = model_or.value();
  EARSHOT_ASSIGN_OR_RETURN(Transcriber t, Transcriber::Create(model));
  auto pcm_or = LoadAudio16k(args.audio);
  if (!pcm_or.ok()) return pcm_or.status();
  std::vector<float> pcm = std::move(pcm_or).value();
  // Exactly what transcribe does with one window: fixed-length models see the audio padded or trimmed to
  // the window, variable-length models see it between the model's edge silences.
  const size_t window = t.audio_per_window();
  if (pcm.size() > window) {
    if (!t.pads_to_window())
      return Status::Error("the audio (" + std::to_string(pcm.size() / 16000.0) + " s) is longer than one encoder window (" +
                           std::to_string(window / 16000.0) + " s)");
    pcm.resize(window);
  }
  if (mkdir(args.out.c_str(), 0755) != 0 && errno != EEXIST) return Status::Error("cannot create " + args.out);

  json index;
  EARSHOT_ASSIGN_OR_RETURN(LogMel mel, t.ComputeWindowMel(pcm.data(), pcm.size()));
  EARSHOT_RETURN_IF_ERROR(WriteTensor(args.out, "mel", mel.data.data(), {mel.n_mels, mel.n_frames}, &index));
  // Also as mel.json ({"shape": [...]}) for front-end checks that read only the features.
  EARSHOT_RETURN_IF_ERROR(WriteJson(args.out + "/mel.json", {{"shape", {mel.n_mels, mel.n_frames}}}));
  EARSHOT_ASSIGN_OR_RETURN(EncoderOutput audio, t.Encode(mel));
  EARSHOT_RETURN_IF_ERROR(WriteTensor(args.out, "encoder", audio.data.data(), {audio.n_positions, audio.d}, &index));

  const int V = model->hparams().n_vocab;
  if (!args.tokens.empty()) {
    const int n = static_cast<int>(args.tokens.size());
    if (n > model->hparams().n_text_ctx)
      return Status::Error("--tokens has " + std::to_string(n) + " tokens; the text context is " +
                           std::to_string(model->hparams().n_text_ctx));
    EARSHOT_ASSIGN_OR_RETURN(DecoderSession session,
                             DecoderSession::Start(t.weights(), audio.data.data(), audio.n_positions, 1, n));
    std::vector<float> logits(static_cast<size_t>(n) * V);
    for (int i = 0; i < n; ++i)
      EARSHOT_RETURN_IF_ERROR(session.Forward(&args.tokens[i], 1, 1, logits.data() + static_cast<size_t>(i) * V));
    EARSHOT_RETURN_IF_ERROR(WriteTensor(args.out, "logits", logits.data(), {n, V}, &index));
  }

  if (args.beam > 0) {
    DecodeOptions options;
    options.beam_size = args.beam;
    options.max_new_tokens = args.max_tokens;
    EARSHOT_ASSIGN_OR_RETURN(WindowDecode d, t.DecodeWindow(audio, options));
    json beam = {{"beam_size", args.beam},
                 {"prompt", d.prompt},
                 {"tokens", d.beam.best.tokens},
                 {"sum_logprob", d.beam.best.sum_logprob},
                 {"score", d.beam.best.score},
                 {"token_logprobs", d.beam.best.token_logprobs},
                 {"text", t.detokenizer().Decode(d.beam.best.tokens)},
                 {"no_speech_prob", d.no_speech_prob},
                 {"finished", json::array()}};
    for (const Hypothesis& h : d.beam.finished) beam["finished"].push_back(HypothesisJson(h));
    EARSHOT_RETURN_IF_ERROR(WriteJson(args.out + "/beam.json", beam));
    index["beam"] = "beam.json";
  }
  return WriteJson(args.out + "/dump.json", index);
}

}  // namespace

int RunDump(int argc, char** argv) {
  Args args;
  if (int rc = ParseArgs(argc, argv, &args); rc >= 0) return rc;
  const Status s = Run(args);
  return s.ok() ? 0 : Fail(s.message());
}

}  // namespace earshot::cli
