// earshot import {checkpoint|whisper} DIR -o OUT.earshot [--dtype f16|f32|int8|int4] [--group-size N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "quantize/importers.h"

namespace earshot::cli {
namespace {

constexpr char kUsage[] =
    "usage: earshot import checkpoint DIR -o OUT.earshot [--dtype f16|f32|int8|int4] [--group-size N]\n"
    "       earshot import whisper DIR -o OUT.earshot [--dtype f16|f32|int8|int4] [--group-size N]\n"
    "\n"
    "Converts a float checkpoint to an .earshot model file.\n"
    "  checkpoint   a folder exported by our training recipe (config.json, model.safetensors, tokenizer.json)\n"
    "  whisper      a Hugging Face Whisper folder (config.json, model.safetensors or shards, vocab.json or\n"
    "               tokenizer.json, optional generation_config.json and preprocessor_config.json)\n"
    "options:\n"
    "  -o, --output PATH   file to write\n"
    "  --dtype f16|f32     storage of weight matrices and embeddings (default f16); biases and\n"
    "                      LayerNorm parameters are always f32\n"
    "  --dtype int8|int4   uniform quantization of linear/conv weights and the token embedding (int8 at\n"
    "                      least: it is also the output projection); positional embeddings become f16\n"
    "  --group-size N      int4 group size along the input dimension (default 32)\n"
    "  -h, --help          this text\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "earshot import: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int RunImport(int argc, char** argv) {
  std::string kind, dir, output;
  DType dtype = DType::F16;
  int group_size = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-o" || arg == "--output" || arg == "--dtype" || arg == "--group-size") {
      if (i + 1 >= argc) return UsageError(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--dtype") {
        if (value == "f16") {
          dtype = DType::F16;
        } else if (value == "f32") {
          dtype = DType::F32;
        } else if (value == "int8") {
          dtype = DType::I8;
        } else if (value == "int4") {
          dtype = DType::I4;
        } else {
          return UsageError("--dtype must be f16, f32, int8 or int4, not '" + value + "'");
        }
      } else if (arg == "--group-size") {
        char* end = nullptr;
        const long g = std::strtol(value.c_str(), &end, 10);
        if (end == value.c_str() || *end != '\0' || g < 2 || g > 4096 || g % 2 != 0)
          return UsageError("--group-size must be an even number from 2 to 4096, not '" + value + "'");
        group_size = static_cast<int>(g);
      } else {
        output = value;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError("unknown option '" + arg + "'");
    } else if (kind.empty()) {
      kind = arg;
    } else if (dir.empty()) {
      dir = arg;
    } else {
      return UsageError("unexpected argument '" + arg + "'");
    }
  }
  if (kind.empty()) return UsageError("say what to import: checkpoint or whisper");
  if (kind != "checkpoint" && kind != "whisper") {
    return UsageError("unknown source kind '" + kind + "' (checkpoint or whisper)");
  }
  if (dir.empty()) return UsageError("missing the source folder");
  if (output.empty()) return UsageError("missing -o OUT.earshot");

  ImportOptions options;
  options.matrix_dtype = dtype;
  options.group_size = group_size;
  auto model = kind == "checkpoint" ? ImportCheckpoint(dir, options) : ImportWhisper(dir, options);
  if (!model.ok()) {
    std::fprintf(stderr, "earshot import: %s\n", model.status().message().c_str());
    return 1;
  }
  for (const std::string& note : model->notes) std::printf("note: %s\n", note.c_str());
  const Status written = WriteModelFile(*model, output);
  if (!written.ok()) {
    std::fprintf(stderr, "earshot import: %s\n", written.message().c_str());
    return 1;
  }
  size_t bytes = 0;
  for (const TensorData& t : model->tensors) bytes += t.data.size();
  std::printf("wrote %s: '%s', %zu tensors, %.1f MiB of weights (%s matrices), vocabulary of %d\n", output.c_str(),
              model->meta.card.name.c_str(), model->tensors.size(), bytes / 1048576.0, DTypeName(dtype),
              model->meta.hparams.n_vocab);
  return 0;
}

}  // namespace earshot::cli
