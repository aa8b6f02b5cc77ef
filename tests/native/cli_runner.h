// Runs the built `earshot` CLI for the end-to-end CLI tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace earshot {
namespace clitest {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout only
  std::string all;  // stdout, then stderr
};

inline const std::string& CliPath() {
  static const std::string path = std::string(EARSHOT_BINARY_DIR) + "/earshot";
  return path;
}

inline bool CliBuilt() { return std::filesystem::exists(CliPath()); }

inline CliResult RunCli(const std::string& args) {
  CliResult r;
  const std::string err_path =
      (std::filesystem::temp_directory_path() / ("earshot_cli_stderr_" + std::to_string(getpid()))).string();
  std::FILE* p = popen((CliPath() + " " + args + " 2>" + err_path).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  r.all = r.out + std::string(std::istreambuf_iterator<char>(err), {});
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace clitest
}  // namespace earshot
