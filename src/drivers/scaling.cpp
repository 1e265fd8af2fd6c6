#include "lca/scaling.hpp"

#include "lca/checkpoint.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/h5.hpp"
#include "lca/mpi.hpp"
#include "lca/random.hpp"
#include "lca/version.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <thread>

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
    {"train_seconds", &SweepRecord::train_seconds},
    {"train_plateau", &SweepRecord::train_plateau},
    {"train_epochs", &SweepRecord::train_epochs}};
constexpr std::size_t kCurveColumns = 7;     // CurvePoint's fields
constexpr std::size_t kCurveSecondsFrom = 5; // its seconds and validation_seconds
/// The per-point scalars that older sweep files lack; they read as unknown (the defaults).
bool optional_field(const std::string& name) {
  return name == "iterations_mean" || name == "gap_mean" || name == "gap_max" ||
         name == "unconverged" || name.rfind("train_", 0) == 0;
}

std::string replicate_suffix(int replicate) {
  return replicate > 0 ? "_rep" + std::to_string(replicate) : "";
}

/// A point's directory under out_dir/points: nf<nf>_lambda<lambda>[_rep<r>], or in reference
/// mode the one directory of its (nf, replicate), nf<nf>_ref<reference lambda>[_rep<r>].
std::filesystem::path point_dir(const SweepConfig& cfg, int nf, double lambda, int replicate,
                                bool reference) {
  const std::string name =
      "nf" + std::to_string(nf) +
      (reference ? "_ref" + fmt(cfg.reference_lambda) : "_lambda" + fmt(lambda)) +
      replicate_suffix(replicate);
  return std::filesystem::path(cfg.out_dir) / "points" / name;
}

/// The training checkpoint of a point; in reference mode one per (nf, replicate), shared by
/// every lambda.
std::string checkpoint_of(const SweepConfig& cfg, int nf, double lambda, int replicate) {
  return (point_dir(cfg, nf, lambda, replicate, cfg.mode == "reference") / "checkpoint.h5")
      .string();
}

/// Points (SweepRecord, PointId) are named by nf, lambda's 6 significant digits and the
/// replicate.
template <class Point> bool same_point(const Point& p, int nf, double lambda, int replicate) {
  return p.nf == nf && p.replicate == replicate && fmt(p.lambda) == fmt(lambda);
}

bool has_point(const Sweep& s, int nf, double lambda, int replicate) {
  return std::any_of(s.points.begin(), s.points.end(),
                     [&](const SweepRecord& p) { return same_point(p, nf, lambda, replicate); });
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

/// The per-image vectors of a record.
std::vector<double> SweepRecord::*const image_fields[] = {
    &SweepRecord::image_error, &SweepRecord::image_active, &SweepRecord::image_response,
    &SweepRecord::image_mse, &SweepRecord::train_curve};

/// A record as one MPI message: nf, L, replicate, round, the scalars, then each per-image vector
/// (and the training curve) after its length (integers below 2^53 are exact in a double).
std::vector<double> pack(const SweepRecord& r) {
  std::vector<double> m{double(r.nf), double(r.system_size), double(r.replicate),
                        double(r.refine_round)};
  for (const auto& [name, field] : scalar_fields)
    m.push_back(r.*field);
  for (auto field : image_fields) {
    m.push_back(double((r.*field).size()));
    m.insert(m.end(), (r.*field).begin(), (r.*field).end());
  }
  return m;
}

SweepRecord unpack(const std::vector<double>& m) {
  SweepRecord r;
  std::size_t i = 0;
  r.nf = int(m[i++]), r.system_size = std::int64_t(m[i++]);
  r.replicate = int(m[i++]), r.refine_round = int(m[i++]);
  for (const auto& [name, field] : scalar_fields)
    r.*field = m[i++];
  for (auto field : image_fields) {
    const auto n = std::size_t(m[i++]);
    (r.*field).assign(m.begin() + std::ptrdiff_t(i), m.begin() + std::ptrdiff_t(i + n));
    i += n;
  }
  return r;
}

/// The same results bit for bit (NaN included); the seconds taken (in all, training and the
/// training curve's) and the round that added the point are not results.
bool same_values(SweepRecord a, SweepRecord b) {
  a.seconds = b.seconds = a.train_seconds = b.train_seconds = 0;
  a.refine_round = b.refine_round = 0;
  for (auto* curve : {&a.train_curve, &b.train_curve})
    for (std::size_t i = kCurveSecondsFrom; i < curve->size(); i += kCurveColumns)
      (*curve)[i] = (*curve)[i + 1] = 0;
  const std::vector<double> x = pack(a), y = pack(b);
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
}

/// The first word where two settings texts differ, for one-line messages.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  std::string u, v;
  while (true) {
    const bool more_a = bool(x >> u), more_b = bool(y >> v);
    if (!more_a)
      u = "(nothing)";
    if (!more_b)
      v = "(nothing)";
    if (u != v || !(more_a || more_b))
      return "'" + u + "' vs '" + v + "'";
  }
}

} // namespace

std::vector<PointId> grid_points(const SweepConfig& cfg) {
  std::vector<PointId> v;
  for (int nf : cfg.sizes)
    for (double lambda : cfg.lambdas)
      for (int r = 0; r < cfg.replicates; ++r)
        v.push_back({nf, lambda, r, 0});
  return v;
}

std::vector<PointId> selected_points(const SweepConfig& cfg) {
  std::vector<PointId> grid = grid_points(cfg);
  if (!cfg.only_points)
    return grid;
  const auto [first, last] = *cfg.only_points;
  const std::string given = "--only-points " + std::to_string(first) +
                            (last != first ? "-" + std::to_string(last) : std::string());
  if (first > last)
    throw InvalidArgument(given + ": the first index is after the last");
  if (last >= grid.size())
    throw InvalidArgument(given + ": the grid has " + std::to_string(grid.size()) + " points (0-" +
                          std::to_string(grid.size() - 1) + ")");
  if (cfg.refine > 0)
    throw InvalidArgument("--only-points runs grid points only; refine after merging the point "
                          "files (lca-scaling merge, then run --refine N)");
  return {grid.begin() + std::ptrdiff_t(first), grid.begin() + std::ptrdiff_t(last + 1)};
}

std::string describe_point(int nf, double lambda, int replicate) {
  return "nf=" + std::to_string(nf) + " lambda=" + fmt(lambda) +
         (replicate ? " replicate " + std::to_string(replicate) : "");
}

std::string point_file(const SweepConfig& cfg, const PointId& p) {
  return (point_dir(cfg, p.nf, p.lambda, p.replicate, false) / "point.h5").string();
}

std::string sweep_path(const std::string& out_dir) {
  return (std::filesystem::path(out_dir) / "sweep.h5").string();
}

std::vector<std::string> sweep_outputs(const SweepConfig& cfg) {
  std::vector<std::string> files;
  if (!cfg.only_points)
    files.push_back(sweep_path(cfg.out_dir));
  for (const PointId& p : selected_points(cfg)) {
    if (cfg.only_points)
      files.push_back(point_file(cfg, p));
    const std::string ck = checkpoint_of(cfg, p.nf, p.lambda, p.replicate);
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
    if (l.timescale == Timescale::adaptive)
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
  if (t.auto_epochs) // (the same: appended only when used)
    os << " | epochs=auto plateau=" << fmt(t.plateau_tol) << " max_epochs=" << t.max_epochs;
  if (t.learn.eta_decay_epochs > 0)
    os << " | eta_decay_epochs=" << fmt(t.learn.eta_decay_epochs);
  if (t.validation)
    os << " | validation: " << t.validation->identity;
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
    // Every point's curve in one table, its first column the point's row in /points.
    std::vector<double> curves;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& c = s.points[i].train_curve;
      for (std::size_t r = 0; r < c.size(); r += kCurveColumns) {
        curves.push_back(double(i));
        curves.insert(curves.end(), c.begin() + std::ptrdiff_t(r),
                      c.begin() + std::ptrdiff_t(r + kCurveColumns));
      }
    }
    if (!curves.empty()) {
      f.write("/training_curve", curves, {curves.size() / (kCurveColumns + 1), kCurveColumns + 1});
      f.set_attribute("/training_curve", "columns",
                      "point epoch images_seen validation_energy validation_error "
                      "validation_active seconds validation_seconds");
    }
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
  if (f.exists("/training_curve")) {
    const h5::Array<double> a = f.read<double>("/training_curve");
    if (a.dims.size() != 2 || a.dims[1] != kCurveColumns + 1)
      throw IoError(path + ": /training_curve must have " + std::to_string(kCurveColumns + 1) +
                    " columns");
    for (std::size_t r = 0; r < a.dims[0]; ++r) {
      const double* row = a.data.data() + r * (kCurveColumns + 1);
      if (!(row[0] >= 0 && row[0] < double(n)))
        throw IoError(path + ": /training_curve row " + std::to_string(r) + " names no point");
      auto& c = s.points[std::size_t(row[0])].train_curve;
      c.insert(c.end(), row + 1, row + 1 + kCurveColumns);
    }
  }
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

namespace {

/// Trains and tests one point, collectively over comm; nullopt when SIGINT/SIGTERM stopped the
/// training (its checkpoint saved). In reference mode a size's dictionary is trained by its first
/// point; the others find the finished checkpoint and read the dictionary back from it.
std::optional<SweepRecord> compute_point(const SweepConfig& cfg, const PointId& id,
                                         const ImageSet& train_set, const ImageSet& test_set,
                                         MPI_Comm comm, std::ostream* progress,
                                         const std::function<void()>& after_batch) {
  const auto t0 = Clock::now();
  const int rank = mpi::rank(comm);
  TrainConfig tc = cfg.train;
  tc.geometry.nf = id.nf;
  tc.learn.seed = replicate_seed(cfg.train.learn.seed, id.replicate);
  tc.shuffle_seed = replicate_seed(cfg.train.shuffle_seed, id.replicate);
  const double train_lambda = cfg.mode == "reference" ? cfg.reference_lambda : id.lambda;
  tc.lca.transfer = make_transfer(tc.preset, train_lambda);
  tc.checkpoint = checkpoint_of(cfg, id.nf, id.lambda, id.replicate);
  tc.after_batch = after_batch;
  if (rank == 0)
    std::filesystem::create_directories(std::filesystem::path(tc.checkpoint).parent_path());
  std::optional<Checkpoint> resume;
  // Whether to resume steers the collectives of training: the group's rank 0 decides.
  if (mpi::from_rank0(comm, [&] { return std::filesystem::exists(tc.checkpoint); })) {
    resume = read_checkpoint(tc.checkpoint);
    check_resume_compatible(*resume, tc.geometry, tc.lca, tc.learn, train_set.identity,
                            tc.checkpoint);
  }
  const TrainSummary ts = train(tc, train_set, resume, comm, progress);
  if (ts.interrupted)
    return std::nullopt;
  SweepRecord rec;
  rec.train_gap_mean = ts.mean_gap, rec.train_gap_max = ts.max_gap;
  rec.train_seconds = ts.seconds;
  if (ts.batches > 0)
    rec.train_unconverged = double(ts.unconverged);
  for (const CurvePoint& c : ts.curve)
    rec.train_curve.insert(rec.train_curve.end(),
                           {double(c.epoch), double(c.images_seen), c.energy, c.percent_error,
                            c.percent_active, c.seconds, c.validation_seconds});
  if (tc.auto_epochs) {
    rec.train_plateau = ts.plateau == Plateau::reached ? 1.0 : 0.0;
    rec.train_epochs = ts.curve.empty() ? NAN : double(ts.curve.back().epoch);
  }
  LcaParams p = tc.lca;
  p.transfer = make_transfer(tc.preset, id.lambda);
  if (!std::isnan(cfg.test_stop_gap))
    p.stop_gap = cfg.test_stop_gap;
  DenoiseConfig dc = cfg.test;
  dc.after_batch = after_batch;
  const DenoiseResult r = denoise(tc.geometry, p, ts.dictionary, test_set, dc, comm, nullptr);
  rec.nf = id.nf;
  rec.system_size = tc.geometry.neurons();
  rec.replicate = id.replicate;
  rec.refine_round = id.round;
  rec.lambda = id.lambda;
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
  return rec;
}

/// Rank 0's queue: the points still to run, in schedule order, those running, and the
/// refinement rounds. A round is decided from the points of earlier rounds once all of them
/// have finished, as a one-group run decides it, so any number of groups adds the same points.
class WorkQueue {
public:
  WorkQueue(const SweepConfig& cfg, const Sweep& done)
      : cfg_(cfg), done_(done), longest_first_(cfg.groups > 1) {
    add(selected_points(cfg));
  }

  /// The next point a group may start now, if any: the first in schedule order, or with several
  /// groups the first of the largest nf and then the smallest lambda, so that the longest points
  /// do not finish last while the other groups idle (a point's work per iteration grows with nf,
  /// FISTA's iterations and the active fraction as lambda falls: 10x from lambda 0.9 to 0.1 in
  /// perf/README.md's sweep).
  std::optional<PointId> take() {
    while (pending_.empty() && running_.empty() && !ended_)
      next_round();
    const auto longer = [](const PointId& a, const PointId& b) {
      return a.nf > b.nf || (a.nf == b.nf && a.lambda < b.lambda);
    };
    auto next = pending_.end();
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
      if (!waits_for_dictionary(*it) &&
          (next == pending_.end() || (longest_first_ && longer(*it, *next))))
        next = it;
    if (next == pending_.end())
      return std::nullopt;
    const PointId p = *next;
    pending_.erase(next);
    running_.push_back(p);
    return p;
  }
  /// p no longer runs: finished (and recorded in the sweep) or interrupted.
  void ended(const PointId& p) {
    running_.erase(std::find_if(running_.begin(), running_.end(), [&](const PointId& q) {
      return same_point(q, p.nf, p.lambda, p.replicate);
    }));
  }
  /// Nothing left to run or to decide.
  bool complete() const { return ended_ && pending_.empty() && running_.empty(); }
  std::size_t running() const { return running_.size(); }

private:
  void add(const std::vector<PointId>& points) {
    for (const PointId& p : points)
      if (!has_point(done_, p.nf, p.lambda, p.replicate))
        pending_.push_back(p);
  }
  void next_round() {
    if (round_ >= cfg_.refine) {
      ended_ = true;
      return;
    }
    ++round_;
    Sweep earlier;
    for (const auto& p : done_.points)
      if (p.refine_round < round_)
        earlier.points.push_back(p);
    std::vector<PointId> add;
    for (const SizeCurve& c : size_curves(to_points(earlier, kPercentError)))
      if (std::find(cfg_.sizes.begin(), cfg_.sizes.end(), c.nf) != cfg_.sizes.end())
        for (double lambda : refinement_lambdas(c, cfg_.refine_width))
          for (int r = 0; r < cfg_.replicates; ++r)
            add.push_back({c.nf, lambda, r, round_});
    if (add.empty())
      ended_ = true;
    this->add(add);
  }
  /// Reference mode trains a size's dictionary once: its other points wait while one runs.
  bool waits_for_dictionary(const PointId& p) const {
    if (cfg_.mode != "reference")
      return false;
    const auto same = [&](const auto& q) { return q.nf == p.nf && q.replicate == p.replicate; };
    return std::none_of(done_.points.begin(), done_.points.end(), same) &&
           std::any_of(running_.begin(), running_.end(), same);
  }

  const SweepConfig& cfg_;
  const Sweep& done_;
  std::deque<PointId> pending_;
  std::vector<PointId> running_;
  const bool longest_first_;
  int round_ = 0;
  bool ended_ = false;
};

/// A communicator freed at the end of its scope.
struct OwnedComm {
  MPI_Comm comm = MPI_COMM_NULL;
  OwnedComm() = default;
  OwnedComm(const OwnedComm&) = delete;
  OwnedComm& operator=(const OwnedComm&) = delete;
  ~OwnedComm() {
    if (comm != MPI_COMM_NULL)
      MPI_Comm_free(&comm); // (a destructor: nothing to report a failure to)
  }
};

/// The groups of a sweep: consecutive ranks, so world rank 0 leads group 0.
struct Groups {
  int count = 1, ranks = 1;
  int group = 0, group_rank = 0;
  OwnedComm group_comm; ///< this rank's group: train and denoise split batches over it
  OwnedComm queue_comm; ///< group leaders <-> rank 0 (a duplicate of the sweep's comm)

  Groups(MPI_Comm comm, int groups) : count(groups) {
    const int rank = mpi::rank(comm);
    ranks = mpi::size(comm);
    group = of(rank);
    mpi::check(MPI_Comm_split(comm, group, rank, &group_comm.comm), "MPI_Comm_split");
    group_rank = mpi::rank(group_comm.comm);
    mpi::check(MPI_Comm_dup(comm, &queue_comm.comm), "MPI_Comm_dup");
  }
  int of(int rank) const { return int(std::int64_t(rank) * count / ranks); }
};

/// Messages from group leaders to rank 0 (each also asks for the next order).
enum Tag : int { kReady = 1, kResult, kInterrupted, kOrder };

/// What a group runs next, {go, nf, lambda, replicate, round}; go = 0: the sweep is over.
using Order = std::array<double, 5>;
Order order_of(const PointId& p) {
  return {1, double(p.nf), p.lambda, double(p.replicate), double(p.round)};
}
PointId point_of(const Order& o) {
  return {int(o[1]), o[2], int(o[3]), int(o[4])};
}

/// Puts a prefix before every line passed on to `out`: with several groups, each leader's
/// [train] lines say which group they come from.
class PrefixedStream : public std::ostream {
public:
  PrefixedStream(std::ostream& out, std::string prefix)
      : std::ostream(nullptr), buf_(out, std::move(prefix)) {
    rdbuf(&buf_);
  }

private:
  struct Buf : std::streambuf {
    Buf(std::ostream& o, std::string p) : out(o), prefix(std::move(p)) {}
    int overflow(int c) override {
      if (traits_type::eq_int_type(c, traits_type::eof()))
        return traits_type::not_eof(c);
      if (at_line_start)
        out << prefix;
      at_line_start = c == '\n';
      out.put(char(c));
      return c;
    }
    int sync() override {
      out.flush();
      return 0;
    }
    std::ostream& out;
    std::string prefix;
    bool at_line_start = true;
  } buf_;
};

/// Completes a request, sleeping between tests: MPI's blocking waits poll the network
/// non-stop, and ranks waiting for their next point would take the cores of ranks that compute.
void wait_sleeping(MPI_Request& request) {
  while (true) {
    int done = 0;
    mpi::check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

/// The group learns its next order from its leader (Ibcast: rank 0 polls the queue meanwhile).
void broadcast(Order& order, const Groups& g) {
  MPI_Request request;
  mpi::check(
      MPI_Ibcast(order.data(), int(order.size()), MPI_DOUBLE, 0, g.group_comm.comm, &request),
      "MPI_Ibcast of a group's order");
  wait_sleeping(request);
}

/// Every rank but rank 0: runs what its group is ordered to until the sweep is over. A group
/// leader sends rank 0 its last result (or kReady, kInterrupted) and receives the next order,
/// which the group gets by broadcast.
void follow(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
            const Groups& g, std::ostream* progress) {
  std::vector<double> report;
  int tag = kReady;
  while (true) {
    Order order{};
    if (g.group != 0 && g.group_rank == 0) {
      // Rank 0 takes the report between two batches of its own point: wait without spinning.
      MPI_Request request;
      mpi::check(MPI_Isend(report.data(), int(report.size()), MPI_DOUBLE, 0, tag, g.queue_comm.comm,
                           &request),
                 "MPI_Isend of a group's report");
      wait_sleeping(request);
      mpi::check(MPI_Irecv(order.data(), int(order.size()), MPI_DOUBLE, 0, kOrder,
                           g.queue_comm.comm, &request),
                 "MPI_Irecv of a group's order");
      wait_sleeping(request);
    }
    broadcast(order, g);
    if (order[0] == 0)
      return;
    const std::optional<SweepRecord> rec =
        compute_point(cfg, point_of(order), train_set, test_set, g.group_comm.comm, progress, {});
    tag = rec ? kResult : kInterrupted;
    report = rec ? pack(*rec) : std::vector<double>();
  }
}

/// Rank 0: keeps the queue and the sweep, and runs group 0's points. Other groups are served
/// whenever rank 0 is between two batches of its own point, or idle.
SweepRun lead(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
              const Groups& g, std::ostream* progress) {
  SweepRun run;
  Sweep& s = run.sweep;
  s.mode = cfg.mode;
  s.reference_lambda = cfg.mode == "reference" ? cfg.reference_lambda : 0;
  s.settings = sweep_settings(cfg, train_set, test_set);
  const std::string path = sweep_path(cfg.out_dir);
  const std::vector<PointId> selection = selected_points(cfg);
  std::vector<std::string> existing;
  if (!cfg.only_points && std::filesystem::exists(path))
    existing.push_back(path);
  for (const PointId& p : selection)
    if (cfg.only_points && std::filesystem::exists(point_file(cfg, p)))
      existing.push_back(point_file(cfg, p));
  for (const std::string& file : existing) {
    Sweep old = read_sweep(file);
    if (old.settings != s.settings)
      throw InvalidArgument(
          file + " was made with other settings; use another --out-dir or the same flags (file: " +
          old.settings + ")");
    s.points.insert(s.points.end(), old.points.begin(), old.points.end());
  }

  WorkQueue queue(cfg, s);
  const int workers = g.count - 1;
  int stopped = 0;                // groups told that the sweep is over
  std::map<int, PointId> running; // group leader's rank -> its point
  std::deque<int> idle;           // group leaders waiting for an order
  const auto start = Clock::now();
  const auto say = [&](const std::string& line) {
    if (progress)
      *progress << line << std::endl;
  };
  const auto started = [&](const PointId& p, int group) {
    if (g.count > 1)
      say("[scaling] group " + std::to_string(group) + " starts " +
          describe_point(p.nf, p.lambda, p.replicate) + " (" + std::to_string(queue.running()) +
          " of " + std::to_string(g.count) + " groups busy)");
  };
  const auto record = [&](const SweepRecord& rec, int group) {
    s.points.push_back(rec);
    if (cfg.only_points) {
      const std::string file = point_file(cfg, {rec.nf, rec.lambda, rec.replicate, 0});
      std::filesystem::create_directories(std::filesystem::path(file).parent_path());
      write_sweep(file, Sweep{s.mode, s.settings, s.reference_lambda, {rec}});
    } else {
      write_sweep(path, s);
    }
    ++run.added;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double left =
        s.points.size() < selection.size() ? double(selection.size() - s.points.size()) : 0.0;
    const std::string plateau =
        std::isnan(rec.train_plateau)
            ? ""
            : (rec.train_plateau > 0 ? ", plateau after " : ", epoch CAP WITHOUT A PLATEAU at ") +
                  fmt(rec.train_epochs) + " epochs";
    char line[560];
    std::snprintf(
        line, sizeof line,
        "[scaling] %s %zu/%zu  %s%s: error %.2f%% +- %.2f, active %.3f%%, "
        "gap %.2g (max %.2g)%s%s  (%.1f s%s)  %.1f points/h  ETA %s",
        rec.refine_round ? "refinement point" : "point", s.points.size(), selection.size(),
        describe_point(rec.nf, rec.lambda, rec.replicate).c_str(),
        cfg.mode == "reference" ? (" (trained at " + fmt(rec.train_lambda) + ")").c_str() : "",
        rec.error_mean, rec.error_se, rec.percent_active, rec.gap_mean, rec.gap_max,
        rec.unconverged > 0 ? " ABOVE --stop-gap" : "", plateau.c_str(), rec.seconds,
        g.count > 1 ? (", group " + std::to_string(group)).c_str() : "",
        3600.0 * double(run.added) / elapsed,
        (format_duration(elapsed / double(run.added) * left) + (cfg.refine ? " + refinement" : ""))
            .c_str());
    say(line);
  };
  // Takes every message that has arrived, then gives each waiting group its next point, or the
  // end once nothing is left (or after an interrupt). A group that asks while a refinement
  // round waits for running points waits too.
  const auto serve = [&]() {
    while (true) {
      int arrived = 0;
      MPI_Status st;
      mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, g.queue_comm.comm, &arrived, &st),
                 "MPI_Iprobe");
      if (!arrived)
        break;
      int n = 0;
      mpi::check(MPI_Get_count(&st, MPI_DOUBLE, &n), "MPI_Get_count");
      std::vector<double> m(static_cast<std::size_t>(n));
      mpi::check(MPI_Recv(m.data(), n, MPI_DOUBLE, st.MPI_SOURCE, st.MPI_TAG, g.queue_comm.comm,
                          MPI_STATUS_IGNORE),
                 "MPI_Recv of a group's report");
      if (st.MPI_TAG != kReady) {
        queue.ended(running.at(st.MPI_SOURCE));
        running.erase(st.MPI_SOURCE);
        if (st.MPI_TAG == kResult)
          record(unpack(m), g.of(st.MPI_SOURCE));
        else
          run.interrupted = true;
      }
      idle.push_back(st.MPI_SOURCE);
    }
    while (!idle.empty()) {
      const std::optional<PointId> p = run.interrupted ? std::nullopt : queue.take();
      if (!p && !run.interrupted && !queue.complete())
        break;
      const Order order = p ? order_of(*p) : Order{};
      mpi::check(MPI_Send(order.data(), int(order.size()), MPI_DOUBLE, idle.front(), kOrder,
                          g.queue_comm.comm),
                 "MPI_Send of an order");
      if (p) {
        running[idle.front()] = *p;
        started(*p, g.of(idle.front()));
      } else {
        ++stopped;
      }
      idle.pop_front();
    }
  };
  const std::function<void()> between_batches =
      workers > 0 ? std::function<void()>(serve) : nullptr;
  std::unique_ptr<PrefixedStream> tagged;
  if (progress && g.count > 1)
    tagged = std::make_unique<PrefixedStream>(*progress, "[group 0] ");

  while (true) {
    if (stop_signal() != 0 && !queue.complete())
      run.interrupted = true;
    serve();
    const std::optional<PointId> mine = run.interrupted ? std::nullopt : queue.take();
    if (mine) {
      Order order = order_of(*mine);
      broadcast(order, g);
      started(*mine, 0);
      const std::optional<SweepRecord> rec =
          compute_point(cfg, *mine, train_set, test_set, g.group_comm.comm,
                        tagged ? tagged.get() : progress, between_batches);
      queue.ended(*mine);
      if (rec)
        record(*rec, 0);
      else
        run.interrupted = true;
      continue;
    }
    if (stopped == workers && (run.interrupted || queue.complete()))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2)); // idle: poll the groups
  }
  Order end{};
  broadcast(end, g);
  return run;
}

} // namespace

SweepRun run_sweep(const SweepConfig& cfg, const ImageSet& train_set, const ImageSet& test_set,
                   MPI_Comm comm, std::ostream* progress) {
  if (cfg.sizes.empty() || cfg.lambdas.empty())
    throw InvalidArgument("the grid is empty: give sizes and lambdas");
  if (cfg.mode != "full" && cfg.mode != "reference")
    throw InvalidArgument("unknown sweep mode '" + cfg.mode + "' (full or reference)");
  if (cfg.train.preset == Preset::custom)
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
  const int rank = mpi::rank(comm), ranks = mpi::size(comm);
  if (cfg.groups < 1 || cfg.groups > ranks)
    throw InvalidArgument("--groups " + std::to_string(cfg.groups) + ": give 1 to " +
                          std::to_string(ranks) + " (the number of MPI ranks)");
  selected_points(cfg); // refuses a bad slice on every rank alike
  const Groups g(comm, cfg.groups);
  if (rank == 0)
    return lead(cfg, train_set, test_set, g, progress);
  std::unique_ptr<PrefixedStream> tagged;
  if (progress && cfg.groups > 1)
    tagged =
        std::make_unique<PrefixedStream>(*progress, "[group " + std::to_string(g.group) + "] ");
  follow(cfg, train_set, test_set, g, tagged ? tagged.get() : progress);
  return {};
}

std::vector<std::string> sweep_files_in(const std::string& out_dir) {
  std::vector<std::string> files, points;
  if (std::filesystem::exists(sweep_path(out_dir)))
    files.push_back(sweep_path(out_dir));
  const std::filesystem::path dir = std::filesystem::path(out_dir) / "points";
  if (std::filesystem::is_directory(dir))
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (std::filesystem::exists(entry.path() / "point.h5"))
        points.push_back((entry.path() / "point.h5").string());
  std::sort(points.begin(), points.end());
  files.insert(files.end(), points.begin(), points.end());
  return files;
}

Sweep merge_sweeps(const std::vector<std::string>& files, std::ostream* log) {
  if (files.empty())
    throw InvalidArgument("nothing to merge: no sweep or point files");
  Sweep out;
  std::vector<std::string> source; // the file each point of `out` came from
  std::size_t repeated = 0;
  std::string example; // of a point found twice
  for (const std::string& file : files) {
    const Sweep s = read_sweep(file);
    if (&file == &files.front()) {
      out.mode = s.mode, out.settings = s.settings, out.reference_lambda = s.reference_lambda;
    } else if (s.settings != out.settings) {
      throw InvalidArgument(file + " was made with other settings than " + files.front() + " (" +
                            first_difference(s.settings, out.settings) + ")");
    }
    for (const SweepRecord& p : s.points) {
      const auto it = std::find_if(out.points.begin(), out.points.end(), [&](const auto& q) {
        return same_point(q, p.nf, p.lambda, p.replicate);
      });
      if (it == out.points.end()) {
        out.points.push_back(p);
        source.push_back(file);
        continue;
      }
      const std::string& other = source[std::size_t(it - out.points.begin())];
      if (!same_values(*it, p))
        throw InvalidArgument(file + ": point " + describe_point(p.nf, p.lambda, p.replicate) +
                              " is also in " + other + " with other values; not merging");
      if (repeated++ == 0)
        example = describe_point(p.nf, p.lambda, p.replicate) + " in " + other + " and " + file;
    }
  }
  if (log && repeated > 0)
    *log << "[merge] " << repeated << " point(s) found in more than one file with the same values "
         << "were kept once (e.g. " << example << ")" << std::endl;
  return out;
}

std::vector<SweepPoint> to_points(const Sweep& s, const Metric& metric) {
  const bool mse = std::string(metric.key) == kSquaredError.key;
  std::vector<SweepPoint> v;
  for (const auto& p : s.points) {
    if (mse && p.image_mse.size() != p.image_error.size())
      throw InvalidArgument("this sweep file predates the squared-error metric");
    v.push_back({p.nf, p.system_size, p.lambda, p.percent_active, mse ? p.image_mse : p.image_error,
                 p.image_active, p.replicate, p.unconverged > 0 || p.train_plateau == 0});
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
