#include <cstdio>
#include <cstring>

#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"transcribe", earshot::cli::RunTranscribe, "transcribe a WAV file"},
    {"inspect", earshot::cli::RunInspect, "print a model's hyper-parameters and tensors"},
    {"import", earshot::cli::RunImport, "convert a checkpoint or a Hugging Face Whisper folder to .earshot"},
    {"export", earshot::cli::RunExport, "write a model as a float checkpoint folder (the inverse of import)"},
    {"dump", earshot::cli::RunDump, "write intermediate tensors (features, encoder output, logits) for parity checks"},
};

void PrintUsage() {
  std::fprintf(stderr, "usage: earshot <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(stderr, "  %-11s %s\n", c.name, c.summary);
  std::fprintf(stderr, "\nRun 'earshot <command> --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (!std::strcmp(argv[1], c.name)) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "earshot: unknown command '%s'\n", argv[1]);
  PrintUsage();
  return 2;
}
