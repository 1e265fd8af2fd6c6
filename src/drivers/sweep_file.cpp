// The sweep on disk: point names and paths, the settings text that a rerun must match, the HDF5
// sweep format (read, write, merge) and a record as one flat message.
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/h5.hpp"
#include "lca/scaling.hpp"
#include "lca/version.hpp"
#include "sweep_detail.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <sstream>

namespace lca {
namespace {

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
    {"train_epochs", &SweepRecord::train_epochs},
    {"train_kept_epoch", &SweepRecord::train_kept_epoch}};
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

/// The same results bit for bit (NaN included); the seconds taken (in all, training and the
/// training curve's) and the round that added the point are not results.
bool same_values(SweepRecord a, SweepRecord b) {
  a.seconds = b.seconds = a.train_seconds = b.train_seconds = 0;
  a.refine_round = b.refine_round = 0;
  for (auto* curve : {&a.train_curve, &b.train_curve})
    for (std::size_t i = kCurveSecondsFrom; i < curve->size(); i += kCurveColumns)
      (*curve)[i] = (*curve)[i + 1] = 0;
  const std::vector<double> x = Impl::pack(a), y = Impl::pack(b);
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

namespace Impl {

bool has_point(const Sweep& s, int nf, double lambda, int replicate) {
  return std::any_of(s.points.begin(), s.points.end(),
                     [&](const SweepRecord& p) { return same_point(p, nf, lambda, replicate); });
}

std::string checkpoint_of(const SweepConfig& cfg, int nf, double lambda, int replicate) {
  return (point_dir(cfg, nf, lambda, replicate, cfg.mode == SweepMode::reference) / "checkpoint.h5")
      .string();
}

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

} // namespace Impl

const char* to_string(SweepMode m) {
  return m == SweepMode::reference ? "reference" : "full";
}

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
    const std::string ck = Impl::checkpoint_of(cfg, p.nf, p.lambda, p.replicate);
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
  const bool reference = cfg.mode == SweepMode::reference;
  os << "mode=" << to_string(cfg.mode)
     << (reference ? " reference_lambda=" + fmt(cfg.reference_lambda) : "")
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
  if (t.warm_start)
    os << " | warm_start";
  return os.str();
}

void write_sweep(const std::string& path, const Sweep& s) {
  h5::atomic_write(path, "sweep file", [&](h5::File& f) {
    const std::size_t n = s.points.size();
    const std::size_t n_test = n ? s.points[0].image_error.size() : 0;
    f.set_attribute("/", "format", "kokkos-lca-sweep");
    f.set_attribute("/", "format_version", std::int64_t(1));
    f.set_attribute("/", "software_version", version);
    f.set_attribute("/", "mode", std::string(to_string(s.mode)));
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
  const auto mode = f.attribute<std::string>("/", "mode");
  if (mode == to_string(SweepMode::full))
    s.mode = SweepMode::full;
  else if (mode == to_string(SweepMode::reference))
    s.mode = SweepMode::reference;
  else
    throw IoError(path + ": unknown sweep mode '" + mode + "'");
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
        return Impl::same_point(q, p.nf, p.lambda, p.replicate);
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

} // namespace lca
