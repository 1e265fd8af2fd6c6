// lca-scaling: the phase-transition study (algorithm.md §6, §7).
//   run      train + denoise-test an (nf x lambda) grid into one resumable sweep file
//            (--groups: points side by side under MPI; --only-points: one job-array task)
//   merge    point files of job-array tasks (and sweep files) -> one sweep file
//   analyze  minima, power-law fits, critical exponents with bootstrap intervals, plots
#include "app_main.hpp"
#include "lca/analysis.hpp"
#include "lca/core.hpp"
#include "lca/distributed.hpp"
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
#include <regex>

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
      (s.mode == lca::SweepMode::reference
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
    for (const char* stem :
         {"error_vs_active", "min_error_vs_L", "min_location_vs_L", "min_count_vs_L"})
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

/// --only-points "I" or "I-J" (grid indices), or UsageError.
std::pair<std::size_t, std::size_t> point_range(const std::string& text) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"((\d{1,9})(?:-(\d{1,9}))?)")))
    throw lca::app::UsageError("--only-points: expected I or I-J (grid point indices), got '" +
                               text + "'");
  const auto first = std::size_t(std::stoul(m[1]));
  return {first, m[2].matched ? std::size_t(std::stoul(m[2])) : first};
}

/// Merges out dirs (their sweep.h5 and points/*/point.h5) and sweep files into `out` (default:
/// the first out dir's sweep.h5), merging into `out` itself if it exists.
int merge(const std::vector<std::string>& inputs, std::string out) {
  for (const auto& in : inputs)
    if (out.empty() && std::filesystem::is_directory(in))
      out = lca::sweep_path(in);
  if (out.empty())
    throw lca::app::UsageError("merge: give --out (no out dir among the inputs)");
  std::vector<std::string> files;
  const auto add = [&](const std::string& file) {
    const auto same = [&](const std::string& f) { return std::filesystem::equivalent(f, file); };
    if (std::none_of(files.begin(), files.end(), same))
      files.push_back(file);
  };
  if (std::filesystem::exists(out))
    add(out);
  for (const auto& in : inputs) {
    if (!std::filesystem::is_directory(in)) {
      add(in);
      continue;
    }
    const std::vector<std::string> found = lca::sweep_files_in(in);
    if (found.empty())
      throw lca::InvalidArgument(in + ": no sweep.h5 and no points/*/point.h5 to merge");
    for (const auto& file : found)
      add(file);
  }
  const lca::Sweep s = lca::merge_sweeps(files, &std::cout);
  lca::write_sweep(out, s);
  std::cout << "lca-scaling merge: " << s.points.size() << " points from " << files.size()
            << " file(s) in " << out << std::endl;
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
    run->fallthrough(); // `run --config FILE` works like `--config FILE run`
    lca::DatasetSpec data;
    lca::app::ModelOptions model;
    lca::SweepConfig cfg;
    lca::DataFormat test_format{};
    std::string test_path, test_split = "test";
    std::int64_t test_subset = 0;
    bool allow_train_as_test = false;
    double lmin = 0.1, lmax = 1.0;
    int lcount = 8;
    lca::app::add_dataset_options(*run, data);
    // The study measures converged codes (certified by the duality gap) unless told otherwise:
    // the solver that was measured fastest to them (--solver auto), training codes to a relative
    // gap of 1e-2, test codes to 1e-3.
    model.cfg.lca.solver = lca::Solver::automatic;
    model.cfg.lca.stop_gap = 1e-2;
    model.cfg.lca.iterations = 2000;
    cfg.test_stop_gap = 1e-3;
    model.add(*run, true);
    lca::app::add_enum_option(*run, "--test-data", test_format, lca::kDataFormatNames,
                              "format of the test data (default: --data)")
        ->default_str(""); // the help's default is --data
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
    // transform() puts a validator first: IsMember checks the name (its help and error text:
    // "x not in {full,reference}"), then CheckedTransformer makes it the enum.
    run->add_option("--mode", cfg.mode,
                    "full: train per point; reference: train once per size at --reference-lambda")
        ->transform(CLI::CheckedTransformer(std::map<std::string, lca::SweepMode>{
                                                {"full", lca::SweepMode::full},
                                                {"reference", lca::SweepMode::reference}})
                        .description(""))
        ->transform(CLI::IsMember({"full", "reference"}))
        ->type_name("TEXT")
        ->default_str(lca::to_string(cfg.mode));
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
        ->check(lca::app::relative());
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
    run->add_option("--groups", cfg.groups,
                    "MPI groups running points side by side, each splitting its point's batches "
                    "over its ranks (rank 0 hands out the points)")
        ->check(lca::app::at_least(1))
        ->capture_default_str();
    std::string only_points;
    run->add_option("--only-points", only_points,
                    "job-array mode: run grid points I or I-J only (0-based; nf-major, then "
                    "lambda, then replicate), each into points/<name>/point.h5, no sweep.h5; "
                    "then lca-scaling merge");

    CLI::App* mg = app.add_subcommand(
        "merge", "combine point files (run --only-points) and sweep files into one sweep file");
    std::vector<std::string> merge_inputs;
    std::string merge_out;
    mg->add_option("inputs", merge_inputs,
                   "out dirs (their sweep.h5 and points/*/point.h5) or sweep/point files")
        ->required()
        ->check(CLI::ExistingPath);
    mg->add_option("--out", merge_out,
                   "the sweep file to write, merged into if it exists (default: sweep.h5 in the "
                   "first out dir given)");

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
                 "use flagged points (codes above the stop gap, or training at the epoch cap "
                 "without a plateau) in the minima and fits");
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

    if (mg->parsed()) {
      lca::app::default_stop_signals("before the merge started");
      return lca::app::rank() == 0 ? merge(merge_inputs, merge_out) : 0;
    }

    if (cfg.lambdas.empty())
      cfg.lambdas = log_spaced(lmin, lmax, lcount);
    // The test set: the training data's other split unless --test-data(-path) names other data
    // (png-list and idx have no splits: their "test split" is the training images).
    lca::DatasetSpec test_spec = data;
    test_spec.split = lca::parse_split(test_split), test_spec.subset = test_subset;
    if (run->count("--test-data") > 0 && test_format != data.format)
      test_spec.format = test_format, test_spec.path.clear();
    if (!test_path.empty())
      test_spec.path = test_path;
    const int ranks = lca::mpi::size(MPI_COMM_WORLD);
    if (cfg.groups > ranks)
      throw lca::app::UsageError("--groups " + std::to_string(cfg.groups) + " is more than the " +
                                 std::to_string(ranks) +
                                 " MPI rank(s); start at least as many ranks (mpirun -np)");
    if (!only_points.empty())
      cfg.only_points = point_range(only_points);
    std::vector<lca::PointId> selection;
    try {
      selection = lca::selected_points(cfg);
    } catch (const lca::InvalidArgument& e) { // the same on every rank: a usage error
      throw lca::app::UsageError(e.what());
    }
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
      model.cfg.lca.solver = lca::Solver::lca, model.cfg.lca.stop_gap = 0, cfg.test_stop_gap = 0;
      if (lca::app::rank() == 0)
        std::cout << "lca-scaling run: " << model.threshold
                  << " has no duality-gap certificate; running fixed-step LCA for --iterations"
                  << std::endl;
    }
    model.finish(train);
    lca::ImageSet validation;
    model.hold_out_validation(train, data.seed, validation);
    cfg.train = model.cfg;
    lca::app::stop_point("before the sweep started");
    cfg.test_is_training =
        lca::app::test_is_training("lca-scaling run",
                                   {"the test set is the training data", "images",
                                    "give separate test data with --test-data-path"},
                                   shared, test.n, allow_train_as_test);
    const std::string sweep_h5 = lca::sweep_path(cfg.out_dir);
    const std::size_t grid = lca::grid_points(cfg).size();
    if (lca::app::rank() == 0) {
      std::filesystem::create_directories(cfg.out_dir);
      std::cout
          << "lca-scaling run: " << cfg.sizes.size() << " sizes x " << cfg.lambdas.size()
          << " lambdas x " << cfg.replicates << " replicate(s) = " << grid << " grid points"
          << (cfg.refine ? " + up to " + std::to_string(cfg.refine) + " refinement rounds" : "")
          << " (" << lca::to_string(cfg.mode) << " mode), " << train.n << " training / " << test.n
          << " test images"
          << (cfg.train.validation ? " / " + std::to_string(validation.n) + " validation" : "")
          << (cfg.train.auto_epochs
                  ? ", epochs auto (plateau " + lca::format_number(cfg.train.plateau_tol, "%.3g") +
                        ", cap " + std::to_string(cfg.train.max_epochs) + ")"
                  : "")
          << (cfg.train.warm_start ? ", warm starts" : "")
          << (cfg.test_is_training ? " (test=training, allowed by --allow-train-as-test)" : "")
          << ", solver " << lca::app::describe_solver(cfg.train.lca) << ", backend "
          << lca::backend_name();
      if (cfg.groups > 1)
        std::cout << ", " << cfg.groups << " groups of " << ranks / cfg.groups
                  << (ranks % cfg.groups ? "-" + std::to_string(ranks / cfg.groups + 1) : "")
                  << " rank(s)";
      const auto name = [](const lca::PointId& p) {
        return lca::describe_point(p.nf, p.lambda, p.replicate);
      };
      if (cfg.only_points)
        std::cout << "; this job: grid points " << cfg.only_points->first << "-"
                  << cfg.only_points->second << " (" << name(selection.front())
                  << (selection.size() > 1 ? " ... " + name(selection.back()) : "") << ")";
      std::cout << "; " << lca::app::threads() << std::endl;
    }
    const lca::ProgressTimer clock(0);
    const lca::SweepRun r = lca::run_sweep(cfg, train, test, MPI_COMM_WORLD, &std::cout);
    if (lca::app::rank() == 0) {
      if (r.interrupted)
        std::cout << "[scaling] interrupted; rerun the same command to continue" << std::endl;
      const lca::Sweep& s = r.sweep;
      int unconverged = 0, refined = 0, capped = 0;
      for (const auto& p : s.points) {
        unconverged += p.unconverged > 0, refined += p.refine_round > 0;
        capped += p.train_plateau == 0;
      }
      const double secs = clock.elapsed();
      std::cout << "lca-scaling run: ";
      if (cfg.only_points)
        std::cout << s.points.size() << " of grid points " << cfg.only_points->first << "-"
                  << cfg.only_points->second << " done, in their point.h5 files under "
                  << cfg.out_dir << "/points (combine: lca-scaling merge " << cfg.out_dir << ")";
      else
        std::cout << s.points.size() << " points (grid " << grid << ", " << refined
                  << " from refinement) in " << sweep_h5;
      std::cout << "; " << r.added << " this run in " << lca::format_duration(secs) << " ("
                << lca::format_number(3600.0 * double(r.added) / secs, "%.1f") << " points/h)";
      const double test_gap =
          std::isnan(cfg.test_stop_gap) ? cfg.train.lca.stop_gap : cfg.test_stop_gap;
      if (test_gap > 0)
        std::cout << "; " << unconverged << " point(s) with test codes above the stop gap "
                  << test_gap << (unconverged ? " (flagged in the analysis)" : "");
      if (cfg.train.auto_epochs)
        std::cout << "; " << capped << " point(s) reached the epoch cap " << cfg.train.max_epochs
                  << " without a plateau" << (capped ? " (flagged in the analysis)" : "");
      std::cout << std::endl;
    }
    return 0;
  });
}
