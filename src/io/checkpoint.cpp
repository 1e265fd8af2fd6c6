#include "lca/checkpoint.hpp"

#include "lca/error.hpp"
#include "lca/h5.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <type_traits>
#include <utility>

namespace lca {
namespace {

constexpr const char* kFormat = "kokkos-lca-checkpoint";
constexpr std::int64_t kFormatVersion = 5;
/// Version 1 files predate the solver settings: they read as the fixed-step LCA they ran.
constexpr const char* kAddedInVersion2[] = {"solver",       "timescale",      "ats_base_min",
                                            "ats_base_max", "ats_tau_factor", "ats_growth_factor",
                                            "stop_gap",     "check_every",    "polish"};
/// Version 2 files predate the schedule and the plateau rule: a constant rate, fixed epochs.
constexpr const char* kAddedInVersion3[] = {"eta_decay_epochs", "epochs_auto", "plateau_tol",
                                            "max_epochs",       "validation",  "plateau"};
/// Version 3 files predate warm starts: cold starts.
constexpr const char* kAddedInVersion4[] = {"warm_start"};
/// Version 4 files predate the best validated dictionary: none.
constexpr const char* kAddedInVersion5[] = {"best_epoch"};
constexpr const char* kBestDictionary = "best_dictionary";
constexpr const char* kCurve = "training_curve";
constexpr const char* kWarmTrain = "warm_start/train";
constexpr const char* kWarmValidation = "warm_start/validation";
constexpr std::size_t kCurveColumns = 7;
constexpr const char* kCurveColumnNames = "epoch images_seen validation_energy validation_error "
                                          "validation_active seconds validation_seconds";

template <std::size_t N> bool listed(const char* const (&names)[N], const char* name) {
  return std::any_of(std::begin(names), std::end(names),
                     [&](const char* n) { return std::strcmp(n, name) == 0; });
}

/// The parameter attributes in schema order (G, P, L may be const). This one list drives
/// writing, reading and the resume comparison, so they cannot drift apart.
template <class G, class P, class L, class F> void visit_params(G& g, P& p, L& l, F&& f) {
  f("nf", g.nf);
  f("channels", g.channels);
  f("height", g.height);
  f("width", g.width);
  f("kernel", g.kernel);
  f("stride", g.stride);
  f("tau", p.tau);
  f("dt", p.dt);
  f("iterations", p.iterations);
  f("stop_tol", p.stop_tol);
  f("solver", p.solver);
  f("timescale", p.timescale);
  f("ats_base_min", p.adaptive.base_min);
  f("ats_base_max", p.adaptive.base_max);
  f("ats_tau_factor", p.adaptive.tau_factor);
  f("ats_growth_factor", p.adaptive.growth_factor);
  f("stop_gap", p.stop_gap);
  f("check_every", p.check_every);
  f("polish", p.polish);
  auto& t = p.transfer;
  f("transfer_vthresh", t.vthresh);
  f("transfer_amin", t.amin);
  f("transfer_amax", t.amax);
  f("transfer_ashift", t.ashift);
  f("transfer_vwidth", t.vwidth);
  f("transfer_symmetric", t.symmetric);
  f("transfer_l0_penalty", t.l0_penalty);
  f("transfer_lambda", t.lambda);
  f("eta", l.eta);
  f("momentum_tau", l.momentum_tau);
  f("decay", l.decay);
  f("seed", l.seed);
  f("eta_decay_epochs", l.eta_decay_epochs);
}

/// Every root attribute except format/format_version.
template <class C, class F> void visit_fields(C& ck, F&& f) {
  visit_params(ck.geometry, ck.lca, ck.learn, f);
  f("batch_size", ck.batch_size);
  f("epochs", ck.epochs);
  f("max_images", ck.max_images);
  f("epochs_auto", ck.epochs_auto);
  f("plateau_tol", ck.plateau_tol);
  f("max_epochs", ck.max_epochs);
  f("validation", ck.validation);
  f("plateau", ck.plateau);
  f("best_epoch", ck.best_epoch);
  f("shuffle", ck.shuffle);
  f("shuffle_seed", ck.shuffle_seed);
  f("warm_start", ck.warm_start);
  f("epoch", ck.epoch);
  f("images_seen", ck.images_seen);
  f("batches", ck.batches);
  f("position_in_epoch", ck.position_in_epoch);
  f("dataset_identity", ck.dataset_identity);
  f("software_version", ck.software_version);
  f("kokkos_backend", ck.kokkos_backend);
  f("preset", ck.preset);
  f("elapsed_seconds", ck.elapsed_seconds);
}

// int and bool fields are stored as int64 (HDF5 has no bool; h5py reads int64 as int).
template <class T>
constexpr bool stored_as_int64 = std::is_same_v<T, int> || std::is_same_v<T, bool>;

// Enums are stored as their names (the flags' spelling).
void parse(const std::string& text, Solver& v) {
  v = parse_solver(text);
}
void parse(const std::string& text, Timescale& v) {
  v = parse_timescale(text);
}
void parse(const std::string& text, Preset& v) {
  v = parse_preset(text);
}

template <class T> void put(h5::File& file, const char* name, const T& value) {
  if constexpr (stored_as_int64<T>)
    file.set_attribute("/", name, std::int64_t(value));
  else if constexpr (std::is_enum_v<T>)
    file.set_attribute("/", name, to_string(value));
  else
    file.set_attribute("/", name, value);
}

template <class T> void get(const h5::File& file, const char* name, T& value) {
  if constexpr (std::is_enum_v<T>) {
    try {
      parse(file.attribute<std::string>("/", name), value);
    } catch (const InvalidArgument& e) {
      throw IoError(file.name() + ": invalid checkpoint: " + e.what());
    }
  } else if constexpr (stored_as_int64<T>) {
    const auto v = file.attribute<std::int64_t>("/", name);
    constexpr std::int64_t lo = std::is_same_v<T, bool> ? 0 : INT_MIN;
    constexpr std::int64_t hi = std::is_same_v<T, bool> ? 1 : INT_MAX;
    if (v < lo || v > hi)
      throw IoError(file.name() + ": attribute '" + name + "' = " + std::to_string(v) +
                    " is out of range");
    value = T(v);
  } else {
    value = file.attribute<T>("/", name);
  }
}

// Display forms for messages; equal strings <=> equal values (doubles use the shortest
// precision that round-trips), so the resume check can compare them directly.
std::string show(const std::string& s) {
  return "'" + s + "'";
}
std::string show(bool b) {
  return b ? "true" : "false";
}
std::string show(double v) {
  for (int precision = 6;; ++precision) {
    std::ostringstream os;
    os.precision(precision);
    os << v;
    if (precision >= 17 || std::strtod(os.str().c_str(), nullptr) == v)
      return os.str();
  }
}
template <class T> std::string show(T v) {
  if constexpr (std::is_enum_v<T>)
    return show(std::string(to_string(v)));
  else
    return std::to_string(v);
}

h5::Dims dictionary_dims(const Geometry& g) {
  using D = h5::Dims::value_type;
  return {D(g.nf), D(g.channels), D(g.kernel), D(g.kernel)};
}

/// Checks shared by writing and reading; returns the problem, or "" if there is none.
std::string problem(const Checkpoint& ck) {
  try {
    validate(ck.geometry);
    validate(ck.lca);
    validate(ck.learn);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  if (ck.batch_size < 1)
    return "batch_size must be >= 1 (got " + show(ck.batch_size) + ")";
  if (ck.epochs < 0 || ck.max_images < 0 || ck.epoch < 0 || ck.images_seen < 0 || ck.batches < 0 ||
      ck.position_in_epoch < 0 || ck.max_epochs < 0 || ck.validation < 0)
    return "run length and progress counters must be >= 0";
  if (!(ck.learn.eta_decay_epochs >= 0) || !std::isfinite(ck.learn.eta_decay_epochs))
    return "eta_decay_epochs must be >= 0 (got " + show(ck.learn.eta_decay_epochs) + ")";
  if (!(ck.plateau_tol >= 0 && ck.plateau_tol < 1))
    return "plateau_tol must be in [0, 1) (got " + show(ck.plateau_tol) + ")";
  if (ck.best_epoch < -1)
    return "best_epoch must be >= -1 (got " + show(ck.best_epoch) + ")";
  return "";
}

void require_finite(const std::string& path, const char* name, const std::vector<float>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw NumericalError(path + ": " + name + " value " + std::to_string(i) + " is " +
                           show(double(v[i])));
}

void write_codes(h5::File& file, const std::string& group, const std::vector<SparseCode>& codes) {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> index;
  std::vector<float> value;
  for (const SparseCode& c : codes) {
    index.insert(index.end(), c.index.begin(), c.index.end());
    value.insert(value.end(), c.value.begin(), c.value.end());
    offsets.push_back(std::int64_t(index.size()));
  }
  file.write(group + "/offsets", offsets, {offsets.size()});
  file.write(group + "/index", index, {index.size()});
  file.write(group + "/value", value, {value.size()});
}

/// "" if every code is what a solve leaves (and warm_start() accepts): indices ascending in
/// [0, neurons) and as many finite nonzero values; else the first problem.
std::string codes_problem(const std::vector<SparseCode>& codes, std::int64_t neurons) {
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (const std::string p = lca::problem(codes[i], neurons); !p.empty())
      return "image " + std::to_string(i) + " has " + p;
  return "";
}

/// The codes of `group`, checked.
std::vector<SparseCode> read_codes(const h5::File& file, const std::string& group,
                                   std::int64_t neurons) {
  const std::string what = file.name() + ": " + group;
  const auto offsets = file.read<std::int64_t>(group + "/offsets");
  const auto index = file.read<std::int32_t>(group + "/index");
  const auto value = file.read<float>(group + "/value");
  if (offsets.dims.size() != 1 || index.dims.size() != 1 || value.dims.size() != 1 ||
      offsets.data.empty() || offsets.data.front() != 0 ||
      offsets.data.back() != std::int64_t(index.data.size()) ||
      index.data.size() != value.data.size())
    throw IoError(what + ": offsets, index and value do not describe sparse codes");
  std::vector<SparseCode> codes(offsets.data.size() - 1);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const std::int64_t from = offsets.data[i], to = offsets.data[i + 1];
    if (to < from || to > std::int64_t(index.data.size()))
      throw IoError(what + ": offsets are not ascending at image " + std::to_string(i));
    codes[i].index.assign(index.data.begin() + from, index.data.begin() + to);
    codes[i].value.assign(value.data.begin() + from, value.data.begin() + to);
  }
  if (const std::string p = codes_problem(codes, neurons); !p.empty())
    throw IoError(what + ": " + p);
  return codes;
}

} // namespace

void write_checkpoint(const std::string& path, const Checkpoint& ck) {
  if (const std::string p = problem(ck); !p.empty())
    throw InvalidArgument(path + ": cannot write checkpoint: " + p);
  const h5::Dims dims = dictionary_dims(ck.geometry);
  const std::pair<const char*, const std::vector<float>*> arrays[] = {
      {"dictionary", &ck.dictionary},
      {"momentum", &ck.momentum},
      {kBestDictionary, ck.best_epoch >= 0 ? &ck.best_dictionary : nullptr}};
  for (const auto& [name, array] : arrays) {
    if (!array)
      continue;
    if (array->size() != h5::File::count(dims))
      throw InvalidArgument(path + ": cannot write checkpoint: " + name + " has " +
                            std::to_string(array->size()) + " values, the geometry needs " +
                            std::to_string(h5::File::count(dims)));
    require_finite(path, name, *array);
  }
  for (const auto* codes : {&ck.warm_train, &ck.warm_validation})
    if (const std::string p = codes_problem(*codes, ck.geometry.neurons()); !p.empty())
      throw InvalidArgument(path + ": cannot write checkpoint: warm-start code of " + p);

  h5::atomic_write(path, "checkpoint", [&](h5::File& file) {
    file.set_attribute("/", "format", kFormat);
    file.set_attribute("/", "format_version", kFormatVersion);
    visit_fields(ck, [&](const char* name, const auto& value) { put(file, name, value); });
    file.write("dictionary", ck.dictionary, dims);
    file.write("momentum", ck.momentum, dims);
    if (ck.best_epoch >= 0)
      file.write(kBestDictionary, ck.best_dictionary, dims);
    if (!ck.curve.empty()) {
      std::vector<double> rows;
      for (const CurvePoint& c : ck.curve)
        rows.insert(rows.end(), {double(c.epoch), double(c.images_seen), c.energy, c.percent_error,
                                 c.percent_active, c.seconds, c.validation_seconds});
      file.write(kCurve, rows, {ck.curve.size(), kCurveColumns});
      file.set_attribute(kCurve, "columns", kCurveColumnNames);
    }
    if (ck.warm_start) {
      write_codes(file, kWarmTrain, ck.warm_train);
      write_codes(file, kWarmValidation, ck.warm_validation);
    }
  });
}

Checkpoint read_checkpoint(const std::string& path) {
  const h5::File file = h5::File::open_read(path);
  if (!file.has_attribute("/", "format") || file.attribute<std::string>("/", "format") != kFormat)
    throw IoError(path + ": not a kokkos-lca checkpoint");
  const auto version = file.attribute<std::int64_t>("/", "format_version");
  if (version < 1 || version > kFormatVersion)
    throw IoError(path + ": checkpoint format version " + std::to_string(version) +
                  " is not supported (this build reads versions 1 to " + show(kFormatVersion) +
                  ")");

  Checkpoint ck;
  visit_fields(ck, [&](const char* name, auto& value) {
    if ((version < 2 && listed(kAddedInVersion2, name)) ||
        (version < 3 && listed(kAddedInVersion3, name)) ||
        (version < 4 && listed(kAddedInVersion4, name)) ||
        (version < 5 && listed(kAddedInVersion5, name)))
      return;
    get(file, name, value);
  });
  if (const std::string p = problem(ck); !p.empty())
    throw IoError(path + ": invalid checkpoint: " + p);
  const h5::Dims dims = dictionary_dims(ck.geometry);
  ck.dictionary = file.read<float>("dictionary", dims);
  ck.momentum = file.read<float>("momentum", dims);
  require_finite(path, "dictionary", ck.dictionary);
  require_finite(path, "momentum", ck.momentum);
  if (ck.best_epoch >= 0) {
    ck.best_dictionary = file.read<float>(kBestDictionary, dims);
    require_finite(path, kBestDictionary, ck.best_dictionary);
  }
  if (file.exists(kCurve)) {
    const h5::Dims shape = file.shape(kCurve);
    if (shape.size() != 2 || shape[1] != kCurveColumns)
      throw IoError(path + ": " + kCurve + " must have " + std::to_string(kCurveColumns) +
                    " columns");
    const std::vector<double> rows = file.read<double>(kCurve, shape);
    for (std::size_t i = 0; i < shape[0]; ++i) {
      const double* r = rows.data() + i * kCurveColumns;
      ck.curve.push_back({std::int64_t(r[0]), std::int64_t(r[1]), r[2], r[3], r[4], r[5], r[6]});
    }
  }
  if (ck.warm_start) {
    ck.warm_train = read_codes(file, kWarmTrain, ck.geometry.neurons());
    ck.warm_validation = read_codes(file, kWarmValidation, ck.geometry.neurons());
  }
  return ck;
}

void check_resume_compatible(const Checkpoint& ck, const Geometry& g, const LcaParams& p,
                             const LearnParams& l, const std::string& dataset_identity,
                             const std::string& checkpoint_path) {
  using Fields = std::vector<std::pair<std::string, std::string>>;
  const auto collect = [](Fields& out) {
    return [&out](const char* name, const auto& value) { out.emplace_back(name, show(value)); };
  };
  Fields stored, requested;
  visit_params(ck.geometry, ck.lca, ck.learn, collect(stored));
  visit_params(g, p, l, collect(requested));
  stored.emplace_back("dataset_identity", show(ck.dataset_identity));
  requested.emplace_back("dataset_identity", show(dataset_identity));
  for (std::size_t i = 0; i < stored.size(); ++i)
    if (stored[i].second != requested[i].second)
      throw InvalidArgument("checkpoint " + (checkpoint_path.empty() ? "" : checkpoint_path + " ") +
                            "is incompatible: " + stored[i].first + " is " + stored[i].second +
                            " in the checkpoint, " + requested[i].second + " requested");
}

} // namespace lca
