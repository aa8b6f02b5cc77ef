// Sub-commands of the `earshot` native CLI. Each returns the process exit code (0 success, 1 runtime error,
// 2 usage error) and prints its own errors to stderr.
#pragma once

namespace earshot::cli {

int RunTranscribe(int argc, char** argv);  // earshot transcribe --model M audio.wav [--beam N] [--json]
int RunInspect(int argc, char** argv);     // earshot inspect M.earshot
int RunImport(int argc, char** argv);      // earshot import {checkpoint|whisper} SRC_DIR -o OUT [--dtype f16]
int RunExport(int argc, char** argv);      // earshot export M.earshot -o DIR (float checkpoint folder)
int RunDump(int argc, char** argv);        // earshot dump: intermediate tensors for parity tests

}  // namespace earshot::cli
