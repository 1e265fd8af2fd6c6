// lca-denoise: the denoising test of a trained dictionary (algorithm.md §2, §5, §7).
#include "app_main.hpp"
#include "lca/checkpoint.hpp"
#include "lca/core.hpp"
#include "lca/denoise.hpp"
#include "lca/distributed.hpp"
#include "lca/solver.hpp"
#include "no_overwrite.hpp"
#include "options.hpp"
#include "train_as_test.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  return lca::app::run("lca-denoise", argc, argv, [](int argc, char** argv) {
    CLI::App app{"Denoising test of a trained kokkos-lca dictionary: LCA on noisy test images, "
                 "percent reconstruction error against the clean ones."};
    lca::app::add_config(app);
    lca::DatasetSpec data_spec;
    data_spec.split = lca::Split::test;
    lca::DenoiseConfig cfg;
    std::string checkpoint, output = "results/denoise/results.h5";
    double lambda = NAN;
    int iterations = 0;
    bool allow_train_as_test = false;
    app.add_option("--checkpoint,-c", checkpoint, "trained checkpoint (lca-train output)")
        ->required();
    lca::app::add_dataset_options(app, data_spec);
    app.add_option("--sigma", cfg.sigma, "Gaussian noise level (normalised units)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    app.add_option("--noise-seed", cfg.noise_seed, "noise seed")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    app.add_option("--lambda", lambda, "override the checkpoint's lambda (named presets only)")
        ->check(lca::app::at_least(0));
    app.add_option("--iterations", iterations, "override the checkpoint's LCA iterations (0: keep)")
        ->check(lca::app::at_least(0));
    app.add_option("--batch", cfg.batch, "images per solve on each rank")
        ->check(lca::app::at_least(1))
        ->capture_default_str();
    lca::LcaParams solver_flags; // each flag given overrides the checkpoint's setting
    const CLI::Option* no_polish = lca::app::add_solver_options(app, solver_flags);
    app.add_flag("--save-codes", cfg.keep_codes, "also write the final activities (sparse)");
    app.add_option("--response", cfg.response_epsilon,
                   "also measure the response chi with this perturbation size (0: off)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    app.add_option("--progress", cfg.progress_seconds, "seconds between progress lines (0: none)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    app.add_option("--output,-o", output, "results file (HDF5)")->capture_default_str();
    app.add_flag("--allow-train-as-test", allow_train_as_test,
                 "denoise the checkpoint's own training data (labelled in the outputs)");
    if (int rc = lca::app::parse(app, "lca-denoise", argc, argv); rc >= 0)
      return rc;
    {
      std::vector<lca::app::FileRole> inputs{{"--checkpoint", checkpoint}};
      for (const auto& file : lca::dataset_files(data_spec))
        inputs.push_back({"input data", file});
      lca::app::add_config_inputs(app, inputs);
      lca::app::refuse_overwriting_inputs(inputs, {{"--output", output}});
    }

    const lca::Checkpoint ck = lca::read_checkpoint(checkpoint);
    lca::LcaParams p = ck.lca;
    if (!std::isnan(lambda)) {
      if (ck.preset == lca::Preset::custom)
        throw lca::InvalidArgument("--lambda cannot override a custom (vertex) transfer function");
      p.transfer = lca::make_transfer(ck.preset, lambda);
    }
    if (iterations != 0)
      p.iterations = iterations;
    const auto given = [&](const char* flag) { return app.count(flag) > 0; };
    if (given("--solver"))
      p.solver = solver_flags.solver;
    if (given("--timescale"))
      p.timescale = solver_flags.timescale;
    if (given("--ats-base-min"))
      p.adaptive.base_min = solver_flags.adaptive.base_min;
    if (given("--ats-base-max"))
      p.adaptive.base_max = solver_flags.adaptive.base_max;
    if (given("--ats-tau-factor"))
      p.adaptive.tau_factor = solver_flags.adaptive.tau_factor;
    if (given("--ats-growth-factor"))
      p.adaptive.growth_factor = solver_flags.adaptive.growth_factor;
    if (given("--stop-gap"))
      p.stop_gap = solver_flags.stop_gap;
    if (given("--check-every"))
      p.check_every = solver_flags.check_every;
    if (given("--no-polish")) // (--no-polish=false turns the support solve back on)
      p.polish = solver_flags.polish;
    lca::validate(p);
    lca::app::refuse_polish_with_auto(no_polish, p);
    // What runs, and what the result records: auto resolved for this backend and shape.
    const lca::LcaParams asked = p;
    p = lca::resolve_solver(p, ck.geometry);
    // The training data, as far as the checkpoint's identity names it: from its files, without
    // loading it (files no longer there cannot be the data to denoise either).
    std::int64_t shared = 0, files = 0;
    if (lca::app::rank() == 0) {
      const auto sources = lca::dataset_sources(data_spec);
      std::vector<std::string> training;
      try {
        training = lca::dataset_sources(lca::dataset_spec_of_identity(ck.dataset_identity));
      } catch (const lca::Error&) {
      }
      shared = lca::app::shared_files(sources, training);
      files = std::int64_t(sources.size());
    }
    const bool train_as_test =
        lca::app::test_is_training("lca-denoise",
                                   {"the data to denoise is the checkpoint's training data",
                                    "files", "denoise other data (--data-path, --split)"},
                                   shared, files, allow_train_as_test);
    lca::ImageSet data = lca::load_dataset(data_spec);
    lca::normalize_images(data);
    // The test does not look at the stop flag: from here a signal ends it the default way.
    lca::app::default_stop_signals("before the test started");
    const int rank = lca::app::rank();
    if (rank == 0) {
      const auto dir = std::filesystem::path(output).parent_path();
      if (!dir.empty())
        std::filesystem::create_directories(dir);
      std::cout << "lca-denoise: " << data.n
                << (train_as_test ? " images of the checkpoint's TRAINING data (allowed by "
                                    "--allow-train-as-test)"
                                  : " test images")
                << ", sigma " << cfg.sigma << ", nf " << ck.geometry.nf << ", " << ck.preset
                << " lambda " << p.transfer.lambda << ", " << lca::app::describe_solver(asked, &p)
                << ", backend " << lca::backend_name() << ", " << lca::app::threads() << std::endl;
    }
    const auto res =
        lca::denoise(ck.geometry, p, ck.dictionary, data, cfg, MPI_COMM_WORLD, &std::cout);
    if (rank == 0) {
      lca::write_denoise_results(
          output, {checkpoint, data.identity, train_as_test, ck.preset, ck.geometry, p, cfg}, res);
      const auto e = lca::mean_se(res.error), b = lca::mean_se(res.noisy_error),
                 a = lca::mean_se(res.active), en = lca::mean_se(res.energy);
      std::printf("lca-denoise: %zu images%s in %.1f s (%.1f img/s)\n"
                  "  reconstruction error  %.3f %% +- %.3f (clean vs Phi a from the noisy input)\n"
                  "  squared error         %.5g per pixel (mean over images of ||x - Phi a||^2 / "
                  "pixels)\n"
                  "  noisy-input baseline  %.3f %% +- %.3f\n"
                  "  percent active        %.4f %%\n  mean energy           %.5g\n",
                  res.error.size(),
                  train_as_test ? " of the TRAINING data (--allow-train-as-test)" : "", res.seconds,
                  res.error.size() / res.seconds, e.mean, e.se, lca::mean_se(res.mse).mean, b.mean,
                  b.se, a.mean, en.mean);
      std::printf("  iterations            %.1f mean, %.0f max per batch (+ %.1f support rounds)\n",
                  lca::mean_se(res.iterations).mean, lca::max_of(res.iterations),
                  lca::mean_se(res.polish_iterations).mean);
      std::string verdict;
      if (p.stop_gap > 0)
        verdict = res.unconverged > 0 ? ", " + std::to_string(res.unconverged) +
                                            " image(s) ABOVE --stop-gap at the cap"
                                      : ", every image certified";
      if (res.gap.empty())
        std::printf("  duality gap           none: hard thresholds have no certificate\n");
      else
        std::printf("  duality gap           %.3g mean, %.3g max%s\n", lca::mean_se(res.gap).mean,
                    lca::max_of(res.gap), verdict.c_str());
      if (!res.response.empty())
        std::printf("  response chi          %.5g (epsilon %g)\n", lca::mean_se(res.response).mean,
                    cfg.response_epsilon);
      std::printf("  results: %s\n", output.c_str());
    }
    return 0;
  });
}
