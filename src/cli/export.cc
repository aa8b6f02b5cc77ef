// earshot export MODEL.earshot -o DIR: the model file back to a float checkpoint folder.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "quantize/importers.h"

namespace earshot::cli {
namespace {

constexpr char kUsage[] =
    "usage: earshot export MODEL.earshot -o DIR\n"
    "\n"
    "Writes the model as a float checkpoint folder, the format 'earshot import checkpoint' reads:\n"
    "  DIR/model.safetensors   every tensor as f32 (int8/int4 weights dequantized: value x scale)\n"
    "  DIR/config.json         hyper-parameters, mel settings, special tokens, model card\n"
    "  DIR/tokenizer.json      the vocabulary\n"
    "Importing DIR with the model's own precision gives back the same weights; training can start from it.\n"
    "options:\n"
    "  -o, --output DIR    folder to write (created with its parents if missing; its three files are replaced)\n"
    "  -h, --help          this text\n";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "earshot export: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int RunExport(int argc, char** argv) {
  std::string input, output;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-o" || arg == "--output") {
      if (i + 1 >= argc) return UsageError(arg + " needs a folder");
      output = argv[++i];
    } else if (!arg.empty() && arg[0] == '-') {
      return UsageError("unknown option '" + arg + "'");
    } else if (input.empty()) {
      input = arg;
    } else {
      return UsageError("unexpected argument '" + arg + "'");
    }
  }
  if (input.empty()) return UsageError("missing the model file");
  if (output.empty()) return UsageError("missing -o DIR");
  auto model = Model::FromFile(input);
  if (!model.ok()) {
    std::fprintf(stderr, "earshot export: %s\n", model.status().message().c_str());
    return 1;
  }
  const Status written = ExportCheckpoint(**model, output);
  if (!written.ok()) {
    std::fprintf(stderr, "earshot export: %s\n", written.message().c_str());
    return 1;
  }
  std::printf("wrote %s: '%s', %zu tensors as f32\n", output.c_str(), (*model)->meta().card.name.c_str(),
              (*model)->tensors().size());
  return 0;
}

}  // namespace earshot::cli
