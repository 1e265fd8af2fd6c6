#pragma once
// Shared by the libFuzzer targets (ci/fuzz.sh builds and runs them). The readers take paths,
// so each input is written to a file in a private temporary directory first. lca::Error (and
// its subclasses) is the documented way a reader rejects bad input: an expected outcome. Any
// other exception escapes LLVMFuzzerTestOneInput and aborts, which libFuzzer reports as a
// finding, as it does crashes, sanitizer reports, timeouts and running out of memory.
#include "lca/error.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace lca::fuzz {

/// The process's scratch directory (created once, removed at exit; never freed, so the exit
/// handler can still use it).
inline const std::string& scratch() {
  static const std::string* dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lca-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

/// Writes `size` bytes to <scratch>/<name> and returns the path.
inline std::string put(const std::string& name, const void* data, std::size_t size) {
  const std::string path = scratch() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), std::streamsize(size));
  if (!out) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

/// Runs body(); an lca::Error is an expected rejection.
template <class Body> void expect_errors_only(Body&& body) {
  try {
    body();
  } catch (const lca::Error&) {
  }
}

} // namespace lca::fuzz
