#pragma once
// No app writes over one of its own inputs: `lca-denoise -c ck.h5 -o ck.h5` once replaced the
// trained checkpoint with the results file. Every app lists what it reads and what it writes
// before any work, and stops with exit 2 when an output is an input: the same canonical path
// (std::filesystem::weakly_canonical: "..", symlinks and not-yet-existing files handled) or,
// for existing files, the same file (hard links, bind mounts).
#include "app_main.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace lca::app {

/// A file and what it is to the user ("--checkpoint", "the data file").
struct FileRole {
  std::string role, path;
};

inline bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ea, eb, ee;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (!ea && !eb && ca == cb)
    return true;
  return fs::exists(a, ea) && fs::exists(b, eb) && fs::equivalent(a, b, ee) && !ee;
}

/// The first output that is also an input, as one line; "" if there is none.
inline std::string overwrite_problem(const std::vector<FileRole>& inputs,
                                     const std::vector<FileRole>& outputs) {
  for (const auto& out : outputs)
    for (const auto& in : inputs)
      if (!out.path.empty() && !in.path.empty() && same_file(out.path, in.path))
        return out.role + " " + out.path + " is the same file as " + in.role + " " + in.path +
               ": refusing to overwrite an input";
  return "";
}

/// Collective; throws UsageError (exit 2) on every rank if an output is an input.
inline void refuse_overwriting_inputs(const std::vector<FileRole>& inputs,
                                      const std::vector<FileRole>& outputs) {
  collective_check([&] { return overwrite_problem(inputs, outputs); });
}

/// The --config files the app read, as inputs.
inline void add_config_inputs(CLI::App& app, std::vector<FileRole>& inputs) {
  if (const CLI::Option* config = app.get_config_ptr(); config && config->count() > 0)
    for (const auto& file : config->results())
      inputs.push_back({"--config", file});
}

} // namespace lca::app
