// lca-train's TOML --config: the fuzzer's bytes are the config file, parsed by a CLI11 app
// with lca-train's options (apps/options.hpp) exactly as lca-train sets them up, then
// validated the way lca-train does before it loads anything (ModelOptions::finish on a
// 1x28x28 data set). CLI11 parse errors (exit code 2 in the apps) and lca::Error (exit 1)
// are expected outcomes.
#include "fuzz_common.hpp"
#include "options.hpp"

#include <CLI/CLI.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string config = lca::fuzz::put("config.toml", data, size);
  // As in apps/lca-train.cpp.
  CLI::App app{"lca-train (fuzzed config)"};
  lca::app::add_config(app);
  lca::DatasetSpec data_spec;
  lca::app::ModelOptions model;
  std::string output = "results/train/checkpoint.h5", resume;
  int inject_fault = -1;
  lca::app::add_dataset_options(app, data_spec);
  model.add(app, true);
  app.add_option("--output,-o", output, "checkpoint file to write (HDF5)");
  app.add_option("--resume", resume, "continue from this checkpoint");
  app.add_option("--inject-fault", inject_fault, "test only")->group("");

  std::vector<std::string> args = {"lca-train", "--config", config};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::Error&) {
    return 0; // lca-train prints it and exits 2 (or 0 for --help)
  }
  lca::ImageSet images;
  images.n = 1, images.channels = 1, images.height = images.width = 28;
  lca::fuzz::expect_errors_only([&] { model.finish(images); });
  return 0;
}
