#include "lca/scaling.hpp"

#include "lca/checkpoint.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/h5.hpp"
#include "lca/mpi.hpp"
#include "lca/random.hpp"
#include "lca/version.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>
#include <sstream>

namespace lca {
namespace {

using Clock = std::chrono::steady_clock;

std::string fmt(double v) {
  return format_number(v);
}

/// The per-point scalars stored under /points, by dataset name.
const std::pair<const char*, double SweepRecord::*> scalar_fields[] = {
    {"lambda", &SweepRecord::lambda},
    {"train_lambda", &SweepRecord::train_lambda},
    {"percent_active", &SweepRecord::percent_active},
    {"error_mean", &SweepRecord::error_mean},
    {"error_se", &SweepRecord::error_se},
    {"noisy_error_mean", &SweepRecord::noisy_error_mean},
    {"energy_mean", &SweepRecord::energy_mean},
    {"response_mean", &SweepRecord::response_mean},
    {"seconds", &SweepRecord::seconds},
    {"iterations_mean", &SweepRecord::iterations_mean},
    {"gap_mean", &SweepRecord::gap_mean},
    {"gap_max", &SweepRecord::gap_max},
    {"unconverged", &SweepRecord::unconverged},
    {"train_gap_mean", &SweepRecord::train_gap_mean},
    {"train_gap_max", &SweepRecord::train_gap_max},
    {"train_unconverged", &SweepRecord::train_unconverged},
    {"train_seconds", &SweepRecord::train_seconds}};
/// The per-point scalars that older sweep files lack; they read as unknown (the defaults).
bool optional_field(const std::string& name) {
  return name == "iterations_mean" || name == "gap_mean" || name == "gap_max" ||
         name == "unconverged" || name.rfind("train_", 0) == 0;
}

std::string point_dir(const SweepConfig& cfg, int nf, double lambda, int replicate) {
  const std::string name =
      (cfg.mode == "reference" ? "nf" + std::to_string(nf) + "_ref" + fmt(cfg.reference_lambda)
                               : "nf" + std::to_string(nf) + "_lambda" + fmt(lambda)) +
      (replicate > 0 ? "_rep" + std::to_string(replicate) : "");
  return (std::filesystem::path(cfg.out_dir) / "points" / name).string();
}

std::string checkpoint_of(const SweepConfig& cfg, int nf, double lambda, int replicate) {
  return (std::filesystem::path(point_dir(cfg, nf, lambda, replicate)) / "checkpoint.h5").string();
}

bool has_point(const Sweep& s, int nf, double lambda, int replicate) {
  for (const auto& p : s.points)
    if (p.nf == nf && p.replicate == replicate && fmt(p.lambda) == fmt(lambda))
      return true;
  return false;
}

/// Replicate r > 0 draws its own dictionary initialisation and training-image order.
std::uint64_t replicate_seed(std::uint64_t seed, int replicate) {
  return replicate == 0 ? seed : hash_combine(seed, std::uint64_t(replicate));
}

template <class T, class F> std::vector<T> column(const Sweep& s, F f) {
  std::vector<T> v;
  for (const auto& p : s.points)
    v.push_back(T(f(p)));
  return v;
}

/// (points x images) matrix of one per-image field; every point must have n values.
std::vector<double> matrix(const Sweep& s, std::vector<double> SweepRecord::*field, std::size_t n) {
  std::vector<double> m;
  for (const auto& p : s.points) {
    if ((p.*field).size() != n)
      throw Error("sweep points disagree on the number of test images");
    m.insert(m.end(), (p.*field).begin(), (p.*field).end());
  }
  return m;
}

} // namespace

std::string sweep_path(const std::string& out_dir) {
  return (std::filesystem::path(out_dir) / "sweep.h5").string();
}

std::vector<std::string> sweep_outputs(const SweepConfig& cfg) {
  std::vector<std::string> files{sweep_path(cfg.out_dir)};
  for (int nf : cfg.sizes)
    for (double lambda : cfg.lambdas)
      for (int r = 0; r < cfg.replicates; ++r) {
        const std::string ck = checkpoint_of(cfg, nf, lambda, r);
        if (std::find(files.begin(), files.end(), ck) == files.end()) {
          files.push_back(ck);
          files.push_back(features_png_path(ck));
        }
      }
  return files;
}

std::string sweep_settings(const SweepConfig& cfg, const ImageSet& train, const ImageSet& test) {
  const auto& t = cfg.train;
  const auto& g = t.geometry;
  std::ostringstream os;
  os << "mode=" << cfg.mode
     << (cfg.mode == "reference" ? " reference_lambda=" + fmt(cfg.reference_lambda) : "")
     << " preset=" << t.preset << " k=" << g.kernel << " s=" << g.stride
     << " tau=" << fmt(t.lca.tau) << " dt=" << fmt(t.lca.dt) << " iterations=" << t.lca.iterations
     << " stop_tol=" << fmt(t.lca.stop_tol);
  // The solver settings, when they differ from the fixed-step LCA that older sweeps ran (so
  // those keep their settings text and can still be resumed).
  const LcaParams legacy;
  const auto& l = t.lca;
  if (l.solver != legacy.solver || l.timescale != legacy.timescale || l.stop_gap > 0) {
    os << " solver=" << l.solver;
    if (l.timescale == "adaptive")
      os << " timescale=adaptive ats=" << fmt(l.adaptive.base_min) << ","
         << fmt(l.adaptive.base_max) << "," << fmt(l.adaptive.tau_factor) << ","
         << fmt(l.adaptive.growth_factor);
    if (l.stop_gap > 0)
      os << " stop_gap=" << fmt(l.stop_gap) << " check_every=" << l.check_every
         << " polish=" << l.polish;
  }
  if (!std::isnan(cfg.test_stop_gap) && cfg.test_stop_gap != l.stop_gap)
    os << " test_stop_gap=" << fmt(cfg.test_stop_gap);
  os << " batch=" << t.batch_size << " epochs=" << t.epochs << " images=" << t.max_images
     << " eta=" << fmt(t.learn.eta) << " momentum_tau=" << fmt(t.learn.momentum_tau)
     << " decay=" << fmt(t.learn.decay) << " seed=" << t.learn.seed << " shuffle=" << t.shuffle
     << " shuffle_seed=" << t.shuffle_seed << " sigma=" << fmt(cfg.test.sigma)
     << " noise_seed=" << cfg.test.noise_seed << " response=" << fmt(cfg.test.response_epsilon)
     << " | train: " << train.identity << " | test: " << test.identity;
  if (cfg.test_is_training) // (appended, so that sweeps without it keep their settings text)
    os << " | test=training (allowed by --allow-train-as-test)";
  return os.str();
}

void write_sweep(const std::string& path, const Sweep& s) {
  h5::atomic_write(path, "sweep file", [&](h5::File& f) {
    const std::size_t n = s.points.size();
    const std::size_t n_test = n ? s.points[0].image_error.size() : 0;
    f.set_attribute("/", "format", "kokkos-lca-sweep");
    f.set_attribute("/", "format_version", std::int64_t(1));
    f.set_attribute("/", "software_version", version);
    f.set_attribute("/", "mode", s.mode);
    f.set_attribute("/", "reference_lambda", s.reference_lambda);
    f.set_attribute("/", "settings", s.settings);
    f.set_attribute("/", "n_points", std::int64_t(n));
    f.set_attribute("/", "n_test", std::int64_t(n_test));
    f.create_group("/points");
    f.write("/points/nf", column<std::int64_t>(s, [](auto& p) { return p.nf; }), {n});
    f.write("/points/system_size", column<std::int64_t>(s, [](auto& p) { return p.system_size; }),
            {n});
    f.write("/points/replicate", column<std::int64_t>(s, [](auto& p) { return p.replicate; }), {n});
    f.write("/points/refine_round", column<std::int64_t>(s, [](auto& p) { return p.refine_round; }),
            {n});

    for (const auto& [name, field] : scalar_fields)
      f.write(std::string("/points/") + name,
              column<double>(s, [field = field](auto& p) { return p.*field; }), {n});
    f.create_group("/images");
    f.write("/images/error", matrix(s, &SweepRecord::image_error, n_test), {n, n_test});
    f.write("/images/active", matrix(s, &SweepRecord::image_active, n_test), {n, n_test});
    const bool response = n && !s.points[0].image_response.empty();
    if (response)
      f.write("/images/response", matrix(s, &SweepRecord::image_response, n_test), {n, n_test});
    const bool mse = std::all_of(s.points.begin(), s.points.end(), [&](const SweepRecord& p) {
      return p.image_mse.size() == n_test;
    });
    if (n && mse)
      f.write("/images/mse", matrix(s, &SweepRecord::image_mse, n_test), {n, n_test});
  });
}

Sweep read_sweep(const std::string& path) {
  const auto f = h5::File::open_read(path);
  if (!f.has_attribute("/", "format") ||
      f.attribute<std::string>("/", "format") != "kokkos-lca-sweep")
    throw IoError(path + ": not a kokkos-lca sweep file");
  Sweep s;
  s.mode = f.attribute<std::string>("/", "mode");
  s.reference_lambda = f.attribute<double>("/", "reference_lambda");
  s.settings = f.attribute<std::string>("/", "settings");
  const auto n = std::size_t(f.attribute<std::int64_t>("/", "n_points"));
  const auto n_test = std::size_t(f.attribute<std::int64_t>("/", "n_test"));
  s.points.resize(n);
  const auto nf = f.read<std::int64_t>("/points/nf", {n});
  const auto L = f.read<std::int64_t>("/points/system_size", {n});
  for (std::size_t i = 0; i < n; ++i)
    s.points[i].nf = int(nf[i]), s.points[i].system_size = L[i];
  for (const auto& [name, field] : {std::pair{"/points/replicate", &SweepRecord::replicate},
                                    std::pair{"/points/refine_round", &SweepRecord::refine_round}})
    if (f.exists(name)) {
      const auto v = f.read<std::int64_t>(name, {n});
      for (std::size_t i = 0; i < n; ++i)
        s.points[i].*field = int(v[i]);
    }

  for (const auto& [name, field] : scalar_fields) {
    if (optional_field(name) && !f.exists(std::string("/points/") + name))
      continue;
    const auto v = f.read<double>(std::string("/points/") + name, {n});
    for (std::size_t i = 0; i < n; ++i)
      s.points[i].*field = v[i];
  }
  const auto rows = [&](const char* name, std::vector<double> SweepRecord::*field) {
    const auto m = f.read<double>(name, {n, n_test});
    for (std::size_t i = 0; i < n; ++i)
      (s.points[i].*field).assign(m.begin() + i * n_test, m.begin() + (i + 1) * n_test);
  };
  rows("/images/error", &SweepRecord::image_error);
  rows("/images/active", &SweepRecord::image_active);
  if (f.exists("/images/response"))
    rows("/images/response", &SweepRecord::image_response);
  if (f.exists("/images/mse"))
    rows("/images/mse", &SweepRecord::image_mse);
  return s;
}

std::vector<double> refinement_lambdas(const SizeCurve& c, double width) {
  if (!(width > 0))
    throw InvalidArgument("refinement width must be > 0, got " + fmt(width));
  std::vector<std::size_t> use; // entries in lambda order with activity and certified codes
  for (std::size_t j = 0; j < c.lambda.size(); ++j)
    if (c.active[j] > 0 && !c.flagged[j])
      use.push_back(j);
  if (use.size() < 2)
    return {};
  std::size_t m = 0;
  for (std::size_t k = 1; k < use.size(); ++k)
    if (c.error[use[k]] < c.error[use[m]])
      m = k;
  const auto lam = [&](std::size_t k) { return c.lambda[use[k]]; };
  const auto named = [](double v) { return std::stod(fmt(v)); };
  std::vector<double> add;
  if (m == 0)
    add.push_back(named(lam(0) * lam(0) / lam(1))); // one grid step beyond the edge
  else if (m + 1 == use.size())
    add.push_back(named(lam(m) * lam(m) / lam(m - 1)));
  else if (lam(m + 1) / lam(m - 1) - 1 > width)
    add = {named(std::sqrt(lam(m - 1) * lam(m))), named(std::sqrt(lam(m) * lam(m + 1)))};
  std::vector<double> fresh; // skip values that name an existing point
  for (double v : add)
    if (std::none_of(c.lambda.begin(), c.lambda.end(), [&](double l) { return fmt(l) == fmt(v); }))
      fresh.push_back(v);
  return fresh;
}

Sweep run_sweep(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
                MPI_Comm comm, std::ostream* progress) {
  if (cfg.sizes.empty() || cfg.lambdas.empty())
    throw InvalidArgument("the grid is empty: give sizes and lambdas");
  if (cfg.mode != "full" && cfg.mode != "reference")
    throw InvalidArgument("unknown sweep mode '" + cfg.mode + "' (full or reference)");
  if (cfg.train.preset == "custom")
    throw InvalidArgument(
        "a sweep varies lambda: use a named threshold preset, not custom vertices");
  if (cfg.replicates < 1 || cfg.refine < 0 || !(cfg.refine_width > 0))
    throw InvalidArgument("a sweep needs replicates >= 1, refine >= 0 and refine width > 0");
  // Before any training: separate test data (--test-data-path) can have another shape.
  const auto shape = [](const ImageSet& d) {
    return std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" +
           std::to_string(d.width);
  };
  if (shape(test_set) != shape(train_set))
    throw InvalidArgument("the test images are " + shape(test_set) + ", the training images " +
                          shape(train_set));
  const int rank = mpi::rank(comm);
  const std::string path = sweep_path(cfg.out_dir);
  Sweep s;
  s.mode = cfg.mode;
  s.reference_lambda = cfg.mode == "reference" ? cfg.reference_lambda : 0;
  s.settings = sweep_settings(cfg, train_set, test_set);
  // Which points to run steers the collectives of training: rank 0 decides what exists.
  if (mpi::from_rank0(comm, [&] { return std::filesystem::exists(path); })) {
    Sweep old = read_sweep(path);
    if (old.settings != s.settings)
      throw InvalidArgument(
          path + " was made with other settings; use another --out-dir or the same flags (file: " +
          old.settings + ")");
    s.points = std::move(old.points);
  }
  const std::size_t grid = cfg.sizes.size() * cfg.lambdas.size() * std::size_t(cfg.replicates);
  std::size_t done_here = 0;
  const auto start = Clock::now();
  std::map<std::pair<int, int>, std::vector<float>> reference_dicts; // per (nf, replicate)

  // Trains and tests one point unless the sweep has it; false when interrupted.
  const auto run_point = [&](int nf, double lambda, int replicate, int round) {
    if (has_point(s, nf, lambda, replicate))
      return true;
    const auto t0 = Clock::now();
    TrainConfig tc = cfg.train;
    tc.geometry.nf = nf;
    tc.learn.seed = replicate_seed(cfg.train.learn.seed, replicate);
    tc.shuffle_seed = replicate_seed(cfg.train.shuffle_seed, replicate);
    const double train_lambda = cfg.mode == "reference" ? cfg.reference_lambda : lambda;
    tc.lca.transfer = make_transfer(tc.preset, train_lambda);
    tc.checkpoint = checkpoint_of(cfg, nf, lambda, replicate);
    SweepRecord rec;
    std::vector<float> dictionary;
    if (auto it = reference_dicts.find({nf, replicate}); it != reference_dicts.end()) {
      dictionary = it->second;
    } else {
      if (rank == 0)
        std::filesystem::create_directories(std::filesystem::path(tc.checkpoint).parent_path());
      std::optional<Checkpoint> resume;
      if (mpi::from_rank0(comm, [&] { return std::filesystem::exists(tc.checkpoint); })) {
        resume = read_checkpoint(tc.checkpoint);
        check_resume_compatible(*resume, tc.geometry, tc.lca, tc.learn, train_set.identity,
                                tc.checkpoint);
      }
      const TrainSummary ts = train(tc, train_set, resume, comm, progress);
      if (ts.interrupted) {
        if (progress && rank == 0)
          *progress << "[scaling] interrupted; rerun the same command to continue" << std::endl;
        return false;
      }
      dictionary = ts.dictionary;
      rec.train_gap_mean = ts.mean_gap, rec.train_gap_max = ts.max_gap;
      rec.train_seconds = ts.seconds;
      if (ts.batches > 0)
        rec.train_unconverged = double(ts.unconverged);
      if (cfg.mode == "reference")
        reference_dicts[{nf, replicate}] = dictionary;
    }
    LcaParams p = tc.lca;
    p.transfer = make_transfer(tc.preset, lambda);
    if (!std::isnan(cfg.test_stop_gap))
      p.stop_gap = cfg.test_stop_gap;
    const DenoiseResult r = denoise(tc.geometry, p, dictionary, test_set, cfg.test, comm, nullptr);
    rec.nf = nf;
    rec.system_size = tc.geometry.neurons();
    rec.replicate = replicate;
    rec.refine_round = round;
    rec.lambda = lambda;
    rec.train_lambda = train_lambda;
    const MeanSe e = mean_se(r.error);
    rec.percent_active = mean_se(r.active).mean;
    rec.error_mean = e.mean, rec.error_se = e.se;
    rec.noisy_error_mean = mean_se(r.noisy_error).mean;
    rec.energy_mean = mean_se(r.energy).mean;
    rec.response_mean = r.response.empty() ? 0.0 : mean_se(r.response).mean;
    rec.iterations_mean = mean_se(r.iterations).mean;
    if (!r.gap.empty())
      rec.gap_mean = mean_se(r.gap).mean, rec.gap_max = max_of(r.gap);
    rec.unconverged = double(r.unconverged);
    rec.image_error = r.error, rec.image_active = r.active, rec.image_response = r.response;
    rec.image_mse = r.mse;
    rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    s.points.push_back(rec);
    if (rank == 0)
      write_sweep(path, s);
    ++done_here;
    if (progress && rank == 0) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const double left = s.points.size() < grid ? double(grid - s.points.size()) : 0.0;
      char line[400];
      std::snprintf(
          line, sizeof line,
          "[scaling] %s %zu/%zu  nf=%d lambda=%s%s%s: error %.2f%% +- %.2f, active %.3f%%, "
          "gap %.2g (max %.2g)%s  (%.1f s)  %.1f points/h  ETA %s",
          round ? "refinement point" : "point", s.points.size(), grid, nf, fmt(lambda).c_str(),
          replicate ? (" replicate " + std::to_string(replicate)).c_str() : "",
          cfg.mode == "reference" ? (" (trained at " + fmt(train_lambda) + ")").c_str() : "",
          e.mean, e.se, rec.percent_active, rec.gap_mean, rec.gap_max,
          rec.unconverged > 0 ? " ABOVE --stop-gap" : "", rec.seconds,
          3600.0 * double(done_here) / elapsed,
          (format_duration(elapsed / double(done_here) * left) +
           (cfg.refine ? " + refinement" : ""))
              .c_str());
      *progress << line << std::endl;
    }
    return true;
  };

  for (int nf : cfg.sizes)
    for (double lambda : cfg.lambdas)
      for (int r = 0; r < cfg.replicates; ++r)
        if (!run_point(nf, lambda, r, 0))
          return s;
  // Each round decides from the points of earlier rounds only, so a resumed run repeats the
  // same decisions.
  for (int round = 1; round <= cfg.refine; ++round) {
    Sweep earlier;
    for (const auto& p : s.points)
      if (p.refine_round < round)
        earlier.points.push_back(p);
    std::vector<std::pair<int, double>> add;
    for (const SizeCurve& c : size_curves(to_points(earlier, kPercentError)))
      if (std::find(cfg.sizes.begin(), cfg.sizes.end(), c.nf) != cfg.sizes.end())
        for (double lambda : refinement_lambdas(c, cfg.refine_width))
          add.emplace_back(c.nf, lambda);
    if (add.empty())
      break;
    for (const auto& [nf, lambda] : add)
      for (int r = 0; r < cfg.replicates; ++r)
        if (!run_point(nf, lambda, r, round))
          return s;
  }
  return s;
}

std::vector<SweepPoint> to_points(const Sweep& s, const Metric& metric) {
  const bool mse = std::string(metric.key) == kSquaredError.key;
  std::vector<SweepPoint> v;
  for (const auto& p : s.points) {
    if (mse && p.image_mse.size() != p.image_error.size())
      throw InvalidArgument("this sweep file predates the squared-error metric");
    v.push_back({p.nf, p.system_size, p.lambda, p.percent_active, mse ? p.image_mse : p.image_error,
                 p.image_active, p.replicate, p.unconverged > 0});
  }
  return v;
}

std::vector<ResponseCurve> response_curves(const Sweep& s) {
  std::map<int, std::map<double, std::pair<double, int>>> sums; // nf -> lambda -> (sum, count)
  std::map<int, std::int64_t> size_of;
  for (const auto& p : s.points)
    if (!p.image_response.empty()) {
      auto& [sum, count] = sums[p.nf][p.lambda];
      sum += p.response_mean;
      ++count;
      size_of[p.nf] = p.system_size;
    }
  std::vector<ResponseCurve> curves;
  for (const auto& [nf, by_lambda] : sums) {
    ResponseCurve c{nf, size_of[nf], {}, {}};
    for (const auto& [lambda, sc] : by_lambda) {
      c.lambda.push_back(lambda);
      c.chi.push_back(sc.first / sc.second);
    }
    curves.push_back(std::move(c));
  }
  return curves;
}

} // namespace lca
