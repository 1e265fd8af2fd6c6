#pragma once
// CLI11 flags shared by the apps: one place for each parameter of algorithm.md §2-§4.
#include "lca/dataset.hpp"
#include "lca/format.hpp"
#include "lca/params.hpp"
#include "lca/train.hpp"
#include "validators.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <istream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace lca::app {

/// CLI11 2.1's TOML reader turns `key = []` into a key with no value and hands that empty
/// list to a scalar option, which reads past its end; an array left open (`key = [0.5`) it
/// silently cuts short (both found by tests/fuzz/fuzz_config). This reader refuses both.
class TomlConfig : public CLI::ConfigTOML {
public:
  /// `app` names the file in errors (CLI11 hands the reader only the stream).
  explicit TomlConfig(const CLI::App& app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::ostringstream text;
    text << input.rdbuf();
    // CLI11 skips lines it cannot read, so a binary file would pass as an empty config and the
    // user would hear about a missing flag instead.
    const std::string& t = text.str();
    const auto binary = std::find_if(t.begin(), t.end(), [](unsigned char c) {
      return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
    });
    if (binary != t.end())
      throw CLI::ConfigError(file_name() + ": not a TOML file (control byte " +
                             std::to_string(int((unsigned char)*binary)) + " at offset " +
                             std::to_string(binary - t.begin()) + ")");
    const std::string open = unclosed_array(text.str());
    if (!open.empty())
      throw CLI::ConfigError("--config: the array of '" + open + "' is not closed with ]");
    std::istringstream again(text.str());
    auto items = CLI::ConfigTOML::from_config(again);
    for (const auto& item : items) // "++"/"--" open and close a [section]: no value by design
      if (item.inputs.empty() && item.name != "++" && item.name != "--")
        throw CLI::ConfigError("--config: '" + item.fullname() + "' has no value");
    return items;
  }

private:
  const CLI::App& app_;

  std::string file_name() const {
    const CLI::Option* opt = app_.get_config_ptr();
    return opt && !opt->results().empty() ? opt->results().back() : "--config";
  }

  /// The key whose array value is still open at the end of the file (as CLI11 reads arrays:
  /// a value starting with [ continues over the next lines until one ends with ]), or "".
  static std::string unclosed_array(const std::string& text) {
    std::istringstream lines(text);
    std::string line, open;
    while (std::getline(lines, line)) {
      CLI::detail::trim(line);
      if (!open.empty()) {
        if (!line.empty() && line.back() == ']')
          open.clear();
        continue;
      }
      const auto eq = line.find('=');
      if (line.empty() || line.front() == '#' || line.front() == '[' || eq == std::string::npos)
        continue;
      std::string value = line.substr(eq + 1);
      value.erase(std::min(value.find('#'), value.size()));
      CLI::detail::trim(value);
      if (value.size() > 1 && value.front() == '[' && value.back() != ']')
        open = CLI::detail::trim_copy(line.substr(0, eq));
    }
    return open;
  }
};

/// What every app does before adding its flags: --config FILE reads flags from a TOML file
/// (see inputs/), and a flag given twice (in the file and again by hand) takes its last
/// value; list options (--sizes, --lambdas) set their own policy and keep every value.
inline void add_config(CLI::App& app) {
  app.set_config("--config", "", "read flags from a TOML file (see inputs/)");
  app.config_formatter(std::make_shared<TomlConfig>(app));
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

/// The names of `table` but `except`: the values a flag takes.
template <class E, std::size_t N>
std::vector<std::string> choices(const EnumName<E> (&table)[N],
                                 std::optional<E> except = std::nullopt) {
  std::vector<std::string> names;
  for (const auto& n : table)
    if (n.value != except)
      names.push_back(n.name);
  return names;
}

/// A flag naming a value of an enum: CLI11 checks the text against `names` (so --help and the
/// errors list them, as for any CLI::IsMember option; a config file's value goes the same way),
/// then it is parsed once into `value`. The default shows as its name.
template <class E, std::size_t N>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, E& value,
                             const EnumName<E> (&table)[N], const std::string& help,
                             const std::vector<std::string>& names) {
  return app
      .add_option_function<std::string>(
          flag, [&value, &table](const std::string& text) { value = *value_of(table, text); }, help)
      ->check(CLI::IsMember(names))
      ->default_str(name_of(table, value));
}
template <class E, std::size_t N>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, E& value,
                             const EnumName<E> (&table)[N], const std::string& help) {
  return add_enum_option(app, flag, value, table, help, choices(table));
}

inline void add_dataset_options(CLI::App& app, DatasetSpec& d) {
  add_enum_option(app, "--data", d.format, kDataFormatNames, "dataset format");
  app.add_option("--data-path", d.path,
                 "dataset directory or file (fashion-mnist: /usr/share/datasets/fashion-mnist; "
                 "png-tiles: inputs/photos-skimage.txt)");
  add_enum_option(app, "--split", d.split, kSplitNames, "train or test");
  app.add_option("--subset", d.subset, "use only this many images (0: all)")
      ->check(at_least(0))
      ->capture_default_str();
  add_enum_option(app, "--subset-mode", d.subset_mode, kSubsetModeNames, "first or random");
  app.add_option("--data-seed", d.seed, "seed of a random subset")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--png-channels", d.channels, "png-list, png-tiles: channels (1 or 3)")
      ->check(one_of({1, 3}))
      ->capture_default_str();
  app.add_option("--png-height", d.height, "png-list: image height; png-tiles: tile height")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--png-width", d.width, "png-list: image width; png-tiles: tile width")
      ->check(at_least(1))
      ->capture_default_str();
  app.add_option("--tile-seed", d.tile_seed, "png-tiles: seed of the photo split, grids and order")
      ->check(at_least(0))
      ->capture_default_str();
  app.add_option("--test-photos-fraction", d.test_photos_fraction,
                 "png-tiles: share of the photographs in the test split")
      ->check(greater_than(0))
      ->capture_default_str();
}

/// Solver and stopping flags (algorithm.md §9), shared by every app that runs inference;
/// returns --no-polish, for refuse_polish_with_auto.
inline CLI::Option* add_solver_options(CLI::App& app, LcaParams& l) {
  auto* grp = app.add_option_group("Solver", "inference solver and certified stopping");
  add_enum_option(*grp, "--solver", l.solver, kSolverNames,
                  "lca, fista, cd (coordinate descent; fista and cd: soft presets only) or auto "
                  "(on CPUs cd, on GPUs fista, both with the support solve; lca for hard "
                  "thresholds). cd with the support solve runs without it to a gap of 1e-3");
  add_enum_option(*grp, "--timescale", l.timescale, kTimescaleNames,
                  "LCA time step: fixed (--dt) or adaptive (PetaVision's adaptive time scale)");
  grp->add_option("--ats-base-min", l.adaptive.base_min, "adaptive time scale: baseMin")
      ->check(greater_than(0))
      ->capture_default_str();
  grp->add_option("--ats-base-max", l.adaptive.base_max, "adaptive time scale: baseMax")
      ->check(greater_than(0))
      ->capture_default_str();
  grp->add_option("--ats-tau-factor", l.adaptive.tau_factor, "adaptive time scale: tauFactor")
      ->check(greater_than(0))
      ->capture_default_str();
  grp->add_option("--ats-growth-factor", l.adaptive.growth_factor,
                  "adaptive time scale: growthFactor")
      ->check(at_least(0))
      ->capture_default_str();
  grp->add_option("--stop-gap", l.stop_gap,
                  "stop a batch once every image's relative duality gap is <= this (0: never; "
                  "soft presets), with --iterations as the cap")
      ->check(relative())
      ->capture_default_str();
  grp->add_option("--check-every", l.check_every, "iterations between gap checks")
      ->check(at_least(1))
      ->capture_default_str();
  return grp->add_flag("!--no-polish", l.polish,
                       "with --stop-gap: no exact solve on settled supports (the support solve; "
                       "--no-polish=false: with it; --solver auto chooses it itself)");
}

/// --solver auto chooses the support solve itself: a --no-polish beside it is refused, not
/// ignored.
inline void refuse_polish_with_auto(const CLI::Option* no_polish, const LcaParams& p) {
  if (p.solver == Solver::automatic && no_polish->count() > 0)
    throw InvalidArgument("--no-polish cannot be given with --solver auto, which chooses the "
                          "support solve itself: name the solver (cd, fista) to choose it");
}

/// One phrase for the start-up lines, e.g. "fista, stop at gap 0.001 (cap 2000 iterations,
/// support solve)", "auto: cd, stop at ..." (given what auto resolved to, `resolved`) or
/// "lca tau 100 dt 1, 400 iterations".
inline std::string describe_solver(const LcaParams& p, const LcaParams* resolved = nullptr) {
  std::ostringstream os;
  os << p.solver;
  const LcaParams runs = resolved ? *resolved : p;
  if (runs.solver != p.solver)
    os << ": " << runs.solver;
  else if (p.solver == Solver::automatic)
    os << " (per size: on CPUs cd, on GPUs fista)";
  if (runs.solver == Solver::lca) {
    os << " tau " << p.tau;
    if (p.timescale == Timescale::adaptive)
      os << " adaptive time scale";
    else
      os << " dt " << p.dt;
  }
  if (p.stop_gap > 0)
    os << ", stop at gap " << p.stop_gap << " (cap " << p.iterations << " iterations"
       << (runs.polish && runs.solver != Solver::automatic ? ", support solve)" : ")");
  else
    os << ", " << p.iterations << " iterations";
  return os.str();
}

/// The summary's verdict of --epochs auto: "plateau after N epochs (...)" or "cap N reached
/// without a plateau (...)".
inline std::string describe_plateau(const TrainSummary& s, const TrainConfig& cfg) {
  std::vector<double> energy;
  for (const auto& c : s.curve)
    energy.push_back(c.energy);
  std::int64_t e = 0; // the epoch the rule stopped at (train() returns at a plateau or the cap)
  const Plateau p = plateau_status(energy, cfg.plateau_tol, cfg.max_epochs, &e);
  const double gain = e > 0 ? (energy[std::size_t(e - 1)] - energy[std::size_t(e)]) /
                                  std::abs(energy[std::size_t(e - 1)])
                            : NAN;
  const std::string why = " (improvement " + format_number(100 * gain, "%.3g") +
                          "% in the last epoch, tolerance " +
                          format_number(100 * cfg.plateau_tol, "%.3g") + "%)";
  const std::string kept = s.kept_epoch >= 0
                               ? "; the dictionary is epoch " + std::to_string(s.kept_epoch) +
                                     "'s, the lowest validation energy"
                               : "";
  return (p == Plateau::reached
              ? "plateau after " + std::to_string(e) + " epochs" + why
              : "cap " + std::to_string(cfg.max_epochs) + " reached without a plateau" + why) +
         kept;
}

/// The model and training flags, with the transfer function given either as a preset or
/// as PetaVision's five vertices.
struct ModelOptions {
  /// --epochs auto's learning-rate schedule unless --eta-decay-epochs is given (README: Training
  /// to a plateau).
  static constexpr double kAutoEtaDecayEpochs = 2;
  TrainConfig cfg;
  std::string epochs = "1";
  std::int64_t validation = 0;
  CLI::Option* no_polish = nullptr;
  double eta_decay_epochs = NAN;
  double lambda = 0.5;
  Preset threshold = Preset::soft_nonneg; ///< not custom: that is the vertices' preset
  double vthresh = NAN, amin = NAN, amax = NAN, ashift = NAN, vwidth = NAN;

  void add(CLI::App& app, bool training) {
    auto& g = cfg.geometry;
    auto& l = cfg.lca;
    app.add_option("--nf", g.nf, "number of features")->capture_default_str();
    app.add_option("--kernel,-k", g.kernel, "kernel size k")->capture_default_str();
    app.add_option("--stride,-s", g.stride, "stride s (padding (k-s)/2)")->capture_default_str();
    app.add_option("--lambda", lambda, "sparsity lambda (threshold of the presets)")
        ->capture_default_str();
    add_enum_option(app, "--threshold", threshold, kPresetNames, "transfer preset",
                    choices(kPresetNames, std::optional(Preset::custom)));
    auto* grp = app.add_option_group("PetaVision vertices",
                                     "custom transfer function (overrides --threshold)");
    grp->add_option("--vthresh", vthresh, "VThresh");
    grp->add_option("--amin", amin, "AMin (default 0)");
    grp->add_option("--amax", amax, "AMax (default +inf)");
    grp->add_option("--ashift", ashift, "AShift (default 0)");
    grp->add_option("--vwidth", vwidth, "VWidth (default 0)");
    app.add_option("--tau", l.tau, "LCA time constant tau")->capture_default_str();
    app.add_option("--dt", l.dt, "LCA time step")->capture_default_str();
    app.add_option("--iterations", l.iterations, "LCA iterations per batch")->capture_default_str();
    app.add_option("--stop-tol", l.stop_tol, "LCA: stop early when max|dV| < tol (0: never)")
        ->capture_default_str();
    no_polish = add_solver_options(app, l);
    app.add_option("--batch", cfg.batch_size, "global batch size (split across MPI ranks)")
        ->capture_default_str();
    if (!training)
      return;
    auto& n = cfg.learn;
    app.add_option("--epochs", epochs,
                   "passes over the training set, or auto: until the validation energy's "
                   "improvement per epoch is below --plateau (at most --max-epochs)")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
              double v = 0;
              if (text == "auto")
                return "";
              if (!detail::as_number(text, v) || v != std::floor(v) || !(v < 1e15))
                return "must be a whole number or auto (got " + text + ")";
              return v >= 0 ? "" : "must be >= 0 (got " + text + ")";
            },
            "N|auto"))
        ->capture_default_str();
    app.add_option("--plateau", cfg.plateau_tol,
                   "--epochs auto: stop once an epoch lowers the validation mean energy by less "
                   "than this fraction")
        ->check(relative())
        ->capture_default_str();
    app.add_option("--max-epochs", cfg.max_epochs, "--epochs auto: the cap")
        ->check(at_least(1))
        ->capture_default_str();
    app.add_option("--validation", validation,
                   "training images held out (by --data-seed) to measure the training curve "
                   "after every epoch (0: none; --epochs auto: 10% of them, at most 1000)")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_option("--eta-decay-epochs", eta_decay_epochs,
                   "epoch e learns at eta / (1 + e / this), halving after this many epochs (0: "
                   "constant; default 0, with --epochs auto " +
                       detail::show(kAutoEtaDecayEpochs) + ")")
        ->check(at_least(0));
    app.add_option("--images", cfg.max_images, "stop after this many images (0: epochs * n)")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_option("--eta", n.eta, "learning rate per batch")->capture_default_str();
    app.add_option("--momentum-tau", n.momentum_tau, "momentum time constant in batches (0: none)")
        ->capture_default_str();
    app.add_option("--decay", n.decay, "weight decay")->capture_default_str();
    app.add_option("--seed", n.seed, "dictionary initialisation seed")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_option("--shuffle", cfg.shuffle, "shuffle the images every epoch")
        ->capture_default_str();
    app.add_option("--shuffle-seed", cfg.shuffle_seed, "seed of the epoch order")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_flag("--warm-start", cfg.warm_start,
                 "start each image's solve from its code of the previous epoch (soft presets; "
                 "the codes go into the checkpoints)");
    app.add_option("--checkpoint-every", cfg.checkpoint_every,
                   "batches between checkpoints (0: at the end only)")
        ->check(at_least(0))
        ->capture_default_str();
    app.add_option("--progress", cfg.progress_seconds, "seconds between progress lines (0: none)")
        ->check(at_least(0))
        ->capture_default_str();
  }

  /// Resolves the transfer function and validates everything (throws InvalidArgument).
  /// PetaVision vertices were given (they override --threshold).
  bool custom() const {
    return !std::isnan(vthresh) || !std::isnan(amin) || !std::isnan(amax) || !std::isnan(ashift) ||
           !std::isnan(vwidth);
  }

  void finish(const ImageSet& data) {
    auto& g = cfg.geometry;
    g.channels = data.channels, g.height = data.height, g.width = data.width;
    if (custom()) {
      Transfer t;
      t.vthresh = std::isnan(vthresh) ? lambda : vthresh;
      t.amin = std::isnan(amin) ? 0.0 : amin;
      t.amax = std::isnan(amax) ? std::numeric_limits<double>::infinity() : amax;
      t.ashift = std::isnan(ashift) ? 0.0 : ashift;
      t.vwidth = std::isnan(vwidth) ? 0.0 : vwidth;
      t.lambda = t.vthresh;
      t.l0_penalty = t.ashift == 0; // hard-like thresholds are scored with the L0 energy
      cfg.lca.transfer = t;
      cfg.preset = Preset::custom;
    } else {
      cfg.lca.transfer = make_transfer(threshold, lambda);
      cfg.preset = threshold;
    }
    cfg.auto_epochs = epochs == "auto";
    if (!cfg.auto_epochs)
      cfg.epochs = std::int64_t(std::strtod(epochs.c_str(), nullptr)); // checked: whole, >= 0
    else if (cfg.max_images > 0)
      throw InvalidArgument("--epochs auto stops at a plateau: give no --images");
    cfg.learn.eta_decay_epochs = !std::isnan(eta_decay_epochs) ? eta_decay_epochs
                                 : cfg.auto_epochs             ? kAutoEtaDecayEpochs
                                                               : 0.0;
    validate(g);
    validate(cfg.lca);
    refuse_polish_with_auto(no_polish, cfg.lca);
    validate(cfg.learn);
    if (cfg.warm_start && !is_lasso(cfg.lca.transfer))
      throw InvalidArgument("--warm-start needs a soft threshold (soft-nonneg, soft)");
    if (cfg.batch_size < 1)
      throw InvalidArgument("batch size must be >= 1 (got " + std::to_string(cfg.batch_size) + ")");
  }

  /// Moves the --validation images (by default with --epochs auto: 10% of the training set, at
  /// most 1000) out of `data` into `held` and points cfg.validation at it; call after finish().
  void hold_out_validation(ImageSet& data, std::uint64_t seed, ImageSet& held) {
    const std::int64_t n =
        validation > 0 ? validation
                       : (cfg.auto_epochs ? std::clamp<std::int64_t>(data.n / 10, 1, 1000) : 0);
    if (n == 0)
      return;
    held = hold_out(data, n, seed);
    cfg.validation = &held;
  }
};

} // namespace lca::app
