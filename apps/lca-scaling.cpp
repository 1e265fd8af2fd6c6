// lca-scaling: the phase-transition study (algorithm.md §6, §7).
//   run      train + denoise-test an (nf x lambda) grid into one resumable sweep file
//   analyze  minima, power-law fits, critical exponents with bootstrap intervals, plots
#include "app_main.hpp"
#include "lca/analysis.hpp"
#include "lca/core.hpp"
#include "lca/format.hpp"
#include "lca/scaling.hpp"
#include "no_overwrite.hpp"
#include "options.hpp"
#include "plot.hpp"
#include "train_as_test.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

namespace {

/// lambda_min * (lambda_max / lambda_min)^(i / (n - 1)), i = 0..n-1.
std::vector<double> log_spaced(double lo, double hi, int n) {
  if (!(lo > 0) || !(hi > lo) || n < 2)
    throw lca::InvalidArgument(
        "the lambda range needs 0 < lambda-min < lambda-max and lambda-count >= 2");
  std::vector<double> v;
  for (int i = 0; i < n; ++i)
    v.push_back(lo * std::pow(hi / lo, double(i) / (n - 1)));
  return v;
}

/// Where analyze writes: --out, by default <sweep dir>/analysis.
std::string analysis_dir(const std::string& sweep_file, const std::string& out) {
  return out.empty() ? (std::filesystem::path(sweep_file).parent_path() / "analysis").string()
                     : out;
}

/// Every file analyze may write in `out`.
std::vector<lca::app::FileRole> analysis_outputs(const std::string& out) {
  std::vector<lca::app::FileRole> files{{"--out output", out + "/results.csv"},
                                        {"--out output", out + "/results.md"}};
  for (const auto& file : lca::plot_files(out))
    files.push_back({"--out output", file});
  return files;
}

int analyze(const std::string& sweep_file, const std::string& out, int bootstrap,
            std::uint64_t seed, bool include_unconverged) {
  const lca::Sweep s = lca::read_sweep(sweep_file);
  std::filesystem::create_directories(out);
  int replicates = 0, refined = 0;
  for (const auto& p : s.points)
    replicates = std::max(replicates, p.replicate + 1), refined += p.refine_round > 0;
  std::string note =
      "Sweep " + sweep_file + ": " + std::to_string(s.points.size()) + " points (" +
      std::to_string(refined) + " added by refinement, " + std::to_string(replicates) +
      " replicate" + (replicates == 1 ? "" : "s") + "), " +
      (s.mode == "reference"
           ? "dictionaries trained once per size at reference lambda " +
                 lca::format_number(s.reference_lambda) + " and tested at every lambda"
           : "one dictionary trained per (nf, lambda, replicate)") +
      ". Settings: " + s.settings;
  // Both error metrics (the squared one only in sweeps that recorded it).
  std::vector<lca::MetricResult> results;
  for (const lca::Metric* m : {&lca::kPercentError, &lca::kSquaredError}) {
    if (m == &lca::kSquaredError && !s.points.empty() && s.points[0].image_mse.empty()) {
      note += "\n\nThis sweep predates the squared-error metric: only the percent error is "
              "analysed.";
      continue;
    }
    results.push_back(
        {m, lca::analyze_study(lca::to_points(s, *m), bootstrap, seed, include_unconverged)});
  }
  const std::string csv = out + "/results.csv", md = out + "/results.md";
  // Response function chi(lambda) per size, when the sweep measured it (§7).
  const std::vector<lca::ResponseCurve> curves = lca::response_curves(s);
  std::vector<lca::PowerLawFit> fits;
  std::string chi_table;
  if (!curves.empty()) {
    chi_table = "## Response function chi(lambda) ~ lambda^g (algorithm.md §7)\n\n| size | g "
                "(fit ± se) | points |\n|---|---|---|\n";
    for (const auto& c : curves) {
      fits.push_back(lca::fit_response(c.lambda, c.chi));
      chi_table += "| " + lca::size_label(c.nf, c.system_size) + " | " +
                   lca::format_number(fits.back().slope, "%.4g") + " ± " +
                   lca::format_number(fits.back().slope_se, "%.2g") + " | " +
                   std::to_string(fits.back().n) + " |\n";
    }
  }
  lca::write_results_table(csv, md, results, note, chi_table);
  std::string plots;
  for (const auto& m : results) {
    lca::plot_study(out, m.result, *m.metric);
    for (const char* stem : {"error_vs_active", "min_error_vs_L", "min_location_vs_L"})
      plots += (plots.empty() ? "" : ", ") + out + "/" + stem + m.metric->suffix + ".png";
  }
  if (!curves.empty()) {
    lca::plot_response(out, curves, fits);
    plots += ", " + out + "/response.png";
  }
  std::ifstream in(md);
  std::cout << in.rdbuf() << "\n";
  std::cout << "lca-scaling analyze:";
  for (const auto& m : results)
    if (!m.result.valid)
      std::cout << "\n  WARNING (" << m.metric->name << "): " << m.result.warning;
  std::cout << "\n  tables: " << csv << ", " << md << "\n  plots:  " << plots << std::endl;
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  return lca::app::run("lca-scaling", argc, argv, [](int argc, char** argv) {
    CLI::App app{"The kokkos-lca phase-transition study: train and test a grid of sizes and "
                 "sparsities, then extract the critical exponents."};
    app.require_subcommand(1);
    // A config file holds the run flags under [run] (see inputs/fashion-mnist-study.toml).
    lca::app::add_config(app);
    CLI::App* run = app.add_subcommand("run", "train + denoise-test the (nf x lambda) grid");
    lca::DatasetSpec data;
    lca::app::ModelOptions model;
    lca::SweepConfig cfg;
    std::string test_format, test_path, test_split = "test";
    std::int64_t test_subset = 0;
    bool allow_train_as_test = false;
    double lmin = 0.1, lmax = 1.0;
    int lcount = 8;
    lca::app::add_dataset_options(*run, data);
    // The study measures converged codes (certified by the duality gap) unless told otherwise:
    // FISTA with polishing, training codes to a relative gap of 1e-2, test codes to 1e-3.
    model.cfg.lca.solver = "fista";
    model.cfg.lca.stop_gap = 1e-2;
    model.cfg.lca.iterations = 2000;
    cfg.test_stop_gap = 1e-3;
    model.add(*run, true);
    run->add_option("--test-data", test_format, "format of the test data (default: --data)")
        ->check(CLI::IsMember(lca::app::kDataFormats));
    run->add_option("--test-data-path", test_path,
                    "test data (default: --data-path, or the --test-data format's default)");
    run->add_option("--test-split", test_split, "split used for the denoising test")
        ->capture_default_str();
    run->add_option("--test-subset", test_subset, "test images (0: all)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    run->add_option("--sizes", cfg.sizes, "nf values (system size L = nf * H/s * W/s)")
        ->check(lca::app::at_least(1))
        ->required()
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    run->add_option("--lambdas", cfg.lambdas,
                    "explicit lambda grid (else log-spaced from --lambda-min/max/count)")
        ->check(lca::app::greater_than(0))
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    run->add_option("--lambda-min", lmin)->check(lca::app::greater_than(0))->capture_default_str();
    run->add_option("--lambda-max", lmax)->check(lca::app::greater_than(0))->capture_default_str();
    run->add_option("--lambda-count", lcount)->check(lca::app::at_least(2))->capture_default_str();
    run->add_option("--mode", cfg.mode,
                    "full: train per point; reference: train once per size at --reference-lambda")
        ->check(CLI::IsMember({"full", "reference"}))
        ->capture_default_str();
    run->add_option("--reference-lambda", cfg.reference_lambda)
        ->check(lca::app::greater_than(0))
        ->capture_default_str();
    run->add_option("--sigma", cfg.test.sigma, "test noise level")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    run->add_option("--noise-seed", cfg.test.noise_seed)
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    run->add_option("--test-batch", cfg.test.batch, "test images per solve on each rank")
        ->check(lca::app::at_least(1))
        ->capture_default_str();
    run->add_option("--response", cfg.test.response_epsilon,
                    "also measure chi with this epsilon (0: off)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    run->add_option("--out-dir", cfg.out_dir, "sweep.h5 and per-point checkpoints")
        ->capture_default_str();
    run->add_option("--test-stop-gap", cfg.test_stop_gap,
                    "relative duality gap of the test codes (0: none; default 1e-3)")
        ->check(lca::app::at_least(0));
    run->add_option("--replicates", cfg.replicates,
                    "dictionaries per (nf, lambda), each with its own seeds")
        ->check(lca::app::at_least(1))
        ->capture_default_str();
    run->add_option("--refine", cfg.refine,
                    "refinement rounds: lambda points added around each size's minimum")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    run->add_option("--refine-width", cfg.refine_width,
                    "refine until the minimum's neighbours satisfy lambda_hi/lambda_lo - 1 <= this")
        ->check(lca::app::greater_than(0))
        ->capture_default_str();
    run->add_flag("--allow-train-as-test", allow_train_as_test,
                  "test on training images when the test set holds them (labelled in the outputs)");

    CLI::App* an =
        app.add_subcommand("analyze", "minima, exponents, tables and plots from a sweep file");
    std::string sweep_file, out;
    int bootstrap = 1000;
    std::uint64_t seed = 1;
    an->add_option("sweep", sweep_file, "sweep.h5 written by run")
        ->required()
        ->check(CLI::ExistingFile);
    an->add_option("--out", out, "output folder (default: <sweep dir>/analysis)");
    bool include_unconverged = false;
    an->add_flag("--include-unconverged", include_unconverged,
                 "use points whose codes missed the stop gap in the minima and fits");
    an->add_option("--bootstrap", bootstrap,
                   "bootstrap draws (over dictionary replicates and test images)")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    an->add_option("--seed", seed, "bootstrap seed")
        ->check(lca::app::at_least(0))
        ->capture_default_str();
    if (int rc = lca::app::parse(app, "lca-scaling", argc, argv); rc >= 0)
      return rc;

    std::vector<lca::app::FileRole> inputs;
    lca::app::add_config_inputs(app, inputs);
    if (an->parsed()) {
      out = analysis_dir(sweep_file, out);
      inputs.push_back({"the sweep file", sweep_file});
      lca::app::refuse_overwriting_inputs(inputs, analysis_outputs(out));
      lca::app::default_stop_signals("before the analysis started");
      return lca::app::rank() == 0 ? analyze(sweep_file, out, bootstrap, seed, include_unconverged)
                                   : 0;
    }

    if (cfg.lambdas.empty())
      cfg.lambdas = log_spaced(lmin, lmax, lcount);
    // The test set: the training data's other split unless --test-data(-path) names other data
    // (png-list and idx have no splits: their "test split" is the training images).
    lca::DatasetSpec test_spec = data;
    test_spec.split = test_split, test_spec.subset = test_subset;
    if (!test_format.empty() && test_format != data.format)
      test_spec.format = test_format, test_spec.path.clear();
    if (!test_path.empty())
      test_spec.path = test_path;
    {
      for (const auto* spec : {&data, &test_spec})
        for (const auto& file : lca::dataset_files(*spec))
          inputs.push_back({"input data", file});
      std::vector<lca::app::FileRole> outputs;
      for (const auto& file : lca::sweep_outputs(cfg))
        outputs.push_back({"--out-dir output", file});
      lca::app::refuse_overwriting_inputs(inputs, outputs);
    }
    lca::ImageSet train = lca::load_dataset(data);
    lca::ImageSet test = lca::load_dataset(test_spec);
    // Raw pixels: normalisation would equate an image with a brighter copy.
    const std::int64_t shared = lca::app::rank() == 0 ? lca::shared_images(train, test) : 0;
    lca::normalize_images(train);
    lca::normalize_images(test);
    if (model.custom())
      throw lca::InvalidArgument(
          "a sweep varies lambda: use a named threshold preset, not custom vertices");
    // Hard thresholds have no certificate: without an explicit solver choice they run the
    // classic fixed-step LCA for the given iterations.
    if (!lca::is_lasso(lca::make_transfer(model.threshold, model.lambda)) &&
        run->count("--solver") == 0 && run->count("--stop-gap") == 0) {
      model.cfg.lca.solver = "lca", model.cfg.lca.stop_gap = 0, cfg.test_stop_gap = 0;
      if (lca::app::rank() == 0)
        std::cout << "lca-scaling run: " << model.threshold
                  << " has no duality-gap certificate; running fixed-step LCA for --iterations"
                  << std::endl;
    }
    model.finish(train);
    cfg.train = model.cfg;
    lca::app::stop_point("before the sweep started");
    cfg.test_is_training =
        lca::app::test_is_training("lca-scaling run",
                                   {"the test set is the training data", "images",
                                    "give separate test data with --test-data-path"},
                                   shared, test.n, allow_train_as_test);
    const std::string sweep_h5 = lca::sweep_path(cfg.out_dir);
    std::size_t before = 0; // points already there (rank 0 reports)
    if (lca::app::rank() == 0) {
      before = std::filesystem::exists(sweep_h5) ? lca::read_sweep(sweep_h5).points.size() : 0;
      std::filesystem::create_directories(cfg.out_dir);
      std::cout << "lca-scaling run: " << cfg.sizes.size() << " sizes x " << cfg.lambdas.size()
                << " lambdas x " << cfg.replicates << " replicate(s)"
                << (cfg.refine ? " + up to " + std::to_string(cfg.refine) + " refinement rounds"
                               : "")
                << " (" << cfg.mode << " mode), " << train.n << " training / " << test.n
                << " test images"
                << (cfg.test_is_training ? " (test=training, allowed by --allow-train-as-test)"
                                         : "")
                << ", solver " << lca::app::describe_solver(cfg.train.lca) << ", backend "
                << lca::backend_name() << std::endl;
    }
    const lca::ProgressTimer clock(0);
    const lca::Sweep s = lca::run_sweep(cfg, train, test, MPI_COMM_WORLD, &std::cout);
    if (lca::app::rank() == 0) {
      const std::size_t grid = cfg.sizes.size() * cfg.lambdas.size() * cfg.replicates;
      int unconverged = 0, refined = 0;
      for (const auto& p : s.points)
        unconverged += p.unconverged > 0, refined += p.refine_round > 0;
      const double secs = clock.elapsed();
      std::cout << "lca-scaling run: " << s.points.size() << " points (grid " << grid << ", "
                << refined << " from refinement) in " << sweep_h5 << "; "
                << s.points.size() - before << " this run in " << lca::format_duration(secs) << " ("
                << lca::format_number(3600.0 * double(s.points.size() - before) / secs, "%.1f")
                << " points/h)";
      const double test_gap =
          std::isnan(cfg.test_stop_gap) ? cfg.train.lca.stop_gap : cfg.test_stop_gap;
      if (test_gap > 0)
        std::cout << "; " << unconverged << " point(s) with test codes above the stop gap "
                  << test_gap << (unconverged ? " (flagged in the analysis)" : "");
      std::cout << std::endl;
    }
    return 0;
  });
}
