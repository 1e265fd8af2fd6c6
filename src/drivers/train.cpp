#include "lca/train.hpp"

#include "lca/core.hpp"
#include "lca/distributed.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/image_png.hpp"
#include "lca/learner.hpp"
#include "lca/mpi.hpp"
#include "lca/version.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <ostream>

namespace lca {
namespace {

volatile std::sig_atomic_t stop_requested = 0; // the signal number
extern "C" void on_stop_signal(int sig) {
  stop_requested = sig;
}

using Clock = std::chrono::steady_clock;
using Scalar = float; // the solver's precision in the apps (algorithm.md: float32)

/// The warm starts' codes: every image's last code, on every rank (a rank may solve any image
/// in a later epoch).
struct WarmCodes {
  std::vector<SparseCode> train, validation;
};

/// Every rank's codes of one batch (rank r solved its mpi::slice), in batch order, on every
/// rank.
std::vector<SparseCode> share_codes(std::vector<SparseCode> local, std::int64_t n_batch,
                                    MPI_Comm comm) {
  const int ranks = mpi::size(comm);
  if (ranks == 1)
    return local;
  std::vector<int> images(ranks), image_at(ranks), entries(ranks, 0), entry_at(ranks, 0);
  for (int r = 0; r < ranks; ++r) {
    const mpi::Slice s = mpi::slice(n_batch, r, ranks);
    images[r] = int(s.count), image_at[r] = int(s.first);
  }
  std::vector<int> local_nnz, nnz(static_cast<std::size_t>(n_batch));
  std::vector<std::int32_t> local_index;
  std::vector<float> local_value;
  for (const SparseCode& c : local) {
    local_nnz.push_back(int(c.index.size()));
    local_index.insert(local_index.end(), c.index.begin(), c.index.end());
    local_value.insert(local_value.end(), c.value.begin(), c.value.end());
  }
  mpi::check(MPI_Allgatherv(local_nnz.data(), int(local_nnz.size()), MPI_INT, nnz.data(),
                            images.data(), image_at.data(), MPI_INT, comm),
             "MPI_Allgatherv of the codes' sizes");
  for (int r = 0; r < ranks; ++r) {
    for (int b = image_at[r]; b < image_at[r] + images[r]; ++b)
      entries[r] += nnz[std::size_t(b)];
    entry_at[r] = r == 0 ? 0 : entry_at[r - 1] + entries[r - 1];
  }
  const std::size_t total = std::size_t(entry_at[ranks - 1] + entries[ranks - 1]);
  std::vector<std::int32_t> index(total);
  std::vector<float> value(total);
  static_assert(sizeof(std::int32_t) == sizeof(int), "MPI_INT carries the code indices");
  mpi::check(MPI_Allgatherv(local_index.data(), int(local_index.size()), MPI_INT, index.data(),
                            entries.data(), entry_at.data(), MPI_INT, comm),
             "MPI_Allgatherv of the codes' indices");
  mpi::check(MPI_Allgatherv(local_value.data(), int(local_value.size()), MPI_FLOAT, value.data(),
                            entries.data(), entry_at.data(), MPI_FLOAT, comm),
             "MPI_Allgatherv of the codes' values");
  std::vector<SparseCode> codes(static_cast<std::size_t>(n_batch));
  std::size_t at = 0;
  for (std::size_t b = 0; b < codes.size(); ++b) {
    codes[b].index.assign(index.begin() + at, index.begin() + at + nnz[b]);
    codes[b].value.assign(value.begin() + at, value.begin() + at + nnz[b]);
    at += std::size_t(nnz[b]);
  }
  return codes;
}

Checkpoint snapshot(const TrainConfig& cfg, const Dictionary<Scalar>& dict,
                    const Learner<Scalar>& learner, const ImageSet& data, std::int64_t epoch,
                    std::int64_t position, std::int64_t images_seen, std::int64_t batches,
                    double elapsed, const std::vector<CurvePoint>& curve, Plateau plateau,
                    std::int64_t best_epoch, const std::vector<float>& best,
                    const WarmCodes* warm) {
  Checkpoint ck;
  ck.geometry = cfg.geometry;
  ck.lca = cfg.lca;
  ck.learn = cfg.learn;
  ck.batch_size = cfg.batch_size;
  ck.epochs = cfg.epochs;
  ck.max_images = cfg.max_images;
  ck.epochs_auto = cfg.auto_epochs;
  if (cfg.auto_epochs) {
    ck.plateau_tol = cfg.plateau_tol, ck.max_epochs = cfg.max_epochs;
    ck.plateau = to_string(plateau);
  }
  ck.validation = cfg.validation ? cfg.validation->n : 0;
  ck.curve = curve;
  ck.best_epoch = best_epoch, ck.best_dictionary = best;
  ck.shuffle = cfg.shuffle;
  ck.shuffle_seed = cfg.shuffle_seed;
  ck.warm_start = cfg.warm_start;
  if (warm)
    ck.warm_train = warm->train, ck.warm_validation = warm->validation;
  ck.epoch = epoch;
  ck.position_in_epoch = position;
  ck.images_seen = images_seen;
  ck.batches = batches;
  ck.dictionary = dict.to_host();
  ck.momentum = learner.momentum_to_host();
  ck.dataset_identity = data.identity;
  ck.software_version = version;
  ck.kokkos_backend = backend_name();
  ck.preset = cfg.preset;
  ck.elapsed_seconds = elapsed;
  for (float w : ck.dictionary)
    if (!std::isfinite(w))
      throw NumericalError("the dictionary became non-finite after batch " +
                           std::to_string(batches) + "; not saved (the last checkpoint is kept)");
  return ck;
}

std::vector<double> energies(const std::vector<CurvePoint>& curve) {
  std::vector<double> e;
  for (const CurvePoint& c : curve)
    e.push_back(c.energy);
  return e;
}

} // namespace

Plateau plateau_status(const std::vector<double>& energies, double tol, std::int64_t max_epochs,
                       std::int64_t* epochs) {
  const auto n = std::int64_t(energies.size());
  for (std::int64_t e = 1; e < n; ++e) {
    const double before = energies[std::size_t(e - 1)], after = energies[std::size_t(e)];
    // !(x >= tol) so that a NaN energy stops the rule instead of running to the cap.
    if (!((before - after) / std::abs(before) >= tol)) {
      if (epochs)
        *epochs = e;
      return Plateau::reached;
    }
    if (e >= max_epochs) {
      if (epochs)
        *epochs = e;
      return Plateau::cap;
    }
  }
  if (epochs)
    *epochs = std::max<std::int64_t>(n - 1, 0);
  return Plateau::running;
}

const char* to_string(Plateau p) {
  switch (p) {
  case Plateau::reached:
    return "reached";
  case Plateau::cap:
    return "cap";
  default:
    return "running";
  }
}

std::string features_png_path(const std::string& checkpoint) {
  std::filesystem::path p(checkpoint);
  return (p.parent_path() / (p.stem().string() + "_features.png")).string();
}

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() {
  return stop_requested;
}

TrainSummary train(const TrainConfig& cfg, const ImageSet& data,
                   const std::optional<Checkpoint>& resume, MPI_Comm comm, std::ostream* progress) {
  Region region("lca::train");
  const Geometry& g = cfg.geometry;
  if (data.channels != g.channels || data.height != g.height || data.width != g.width)
    throw InvalidArgument("images are " + std::to_string(data.channels) + "x" +
                          std::to_string(data.height) + "x" + std::to_string(data.width) +
                          ", the run expects " + std::to_string(g.channels) + "x" +
                          std::to_string(g.height) + "x" + std::to_string(g.width));
  if (data.n < 1)
    throw InvalidArgument("the training set is empty");
  if (cfg.batch_size < 1)
    throw InvalidArgument("batch size must be >= 1");
  if (!cfg.auto_epochs && cfg.epochs < 1 && cfg.max_images < 1)
    throw InvalidArgument("nothing to do: epochs and images are both < 1");
  if (!(cfg.learn.eta_decay_epochs >= 0) || !std::isfinite(cfg.learn.eta_decay_epochs))
    throw InvalidArgument("the learning rate's decay needs eta_decay_epochs >= 0");
  if (cfg.auto_epochs) {
    if (!cfg.validation || cfg.validation->n < 1)
      throw InvalidArgument("--epochs auto needs validation images (--validation)");
    if (cfg.max_images > 0)
      throw InvalidArgument("--epochs auto stops at a plateau: give no --images");
    if (cfg.max_epochs < 1 || !(cfg.plateau_tol >= 0 && cfg.plateau_tol < 1))
      throw InvalidArgument("--epochs auto needs max_epochs >= 1 and a tolerance in [0, 1)");
  }
  const ImageSet* const validation =
      cfg.validation && cfg.validation->n > 0 ? cfg.validation : nullptr;
  if (validation && (validation->channels != g.channels || validation->height != g.height ||
                     validation->width != g.width))
    throw InvalidArgument("the validation images do not have the training images' shape");
  if (cfg.warm_start && !is_lasso(cfg.lca.transfer))
    throw InvalidArgument("--warm-start needs a soft threshold (soft-nonneg, soft)");
  if (resume && resume->warm_start != cfg.warm_start)
    throw InvalidArgument(std::string("the checkpoint to resume was trained ") +
                          (resume->warm_start ? "with" : "without") + " warm starts: resume it " +
                          (resume->warm_start ? "with" : "without") + " --warm-start");
  const int rank = mpi::rank(comm), ranks = mpi::size(comm);

  Dictionary<Scalar> dict(g);
  Learner<Scalar> learner(g, cfg.learn);
  LcaSolver<Scalar> solver(g, cfg.lca);
  // One rank has nothing to sum (and skips the host round trip of the gradient).
  const Learner<Scalar>::SumInPlace gradient_sum =
      ranks > 1 ? mpi::sum_in_place<Scalar>(comm) : Learner<Scalar>::SumInPlace();
  std::int64_t epoch = 0, position = 0, images_seen = 0, batches = 0;
  double elapsed_before = 0;
  std::vector<CurvePoint> curve;
  // The validated epoch of lowest validation energy and its dictionary: --epochs auto returns
  // to it when the rule stops at a rise (a too-large rate can make an epoch worse).
  std::int64_t best_epoch = -1;
  std::vector<float> best;
  WarmCodes warm;
  if (resume) {
    dict.from_host(resume->dictionary);
    learner.momentum_from_host(resume->momentum);
    epoch = resume->epoch, position = resume->position_in_epoch;
    images_seen = resume->images_seen, batches = resume->batches;
    elapsed_before = resume->elapsed_seconds;
    curve = resume->curve;
    best_epoch = resume->best_epoch, best = resume->best_dictionary;
    warm.train = resume->warm_train, warm.validation = resume->warm_validation;
  } else {
    dict.init_random(cfg.learn.seed);
  }
  // Every epoch's end is validated before its checkpoint is written, so a checkpoint holds one
  // curve row per finished epoch plus the initial one; anything else is another run's.
  const std::int64_t finished_epochs = epoch + (position >= data.n ? 1 : 0);
  if (validation && resume && std::int64_t(curve.size()) != finished_epochs + 1)
    throw InvalidArgument("checkpoint " + cfg.checkpoint + " has " + std::to_string(curve.size()) +
                          " training-curve rows after " + std::to_string(finished_epochs) +
                          " epochs: it was not trained with this validation set");
  if (cfg.warm_start) {
    const std::int64_t n_validation = validation ? validation->n : 0;
    if (!resume)
      warm.train.resize(std::size_t(data.n)), warm.validation.resize(std::size_t(n_validation));
    else if (std::int64_t(warm.train.size()) != data.n ||
             std::int64_t(warm.validation.size()) != n_validation)
      throw InvalidArgument("checkpoint " + cfg.checkpoint + " holds codes of " +
                            std::to_string(warm.train.size()) + " + " +
                            std::to_string(warm.validation.size()) + " images, the run has " +
                            std::to_string(data.n) + " + " + std::to_string(n_validation));
  }
  learner.set_eta(eta_at(cfg.learn, epoch));
  const std::int64_t total = cfg.auto_epochs      ? cfg.max_epochs * data.n
                             : cfg.max_images > 0 ? cfg.max_images
                                                  : cfg.epochs * data.n;
  const bool writer = rank == 0 && !cfg.checkpoint.empty();
  const auto start = Clock::now();
  const auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(Clock::now() - start).count();
  };
  ProgressTimer timer(cfg.progress_seconds);
  const auto plateau = [&] {
    return cfg.auto_epochs ? plateau_status(energies(curve), cfg.plateau_tol, cfg.max_epochs)
                           : Plateau::running;
  };
  // The rule stopped at an epoch that raised the validation energy: the best one is kept.
  const auto keeps_best = [&] {
    return plateau() != Plateau::running && best_epoch >= 0 && best_epoch != curve.back().epoch;
  };
  auto save = [&]() {
    const Checkpoint ck =
        snapshot(cfg, dict, learner, data, epoch, position, images_seen, batches, elapsed(), curve,
                 plateau(), best_epoch, best, writer ? &warm : nullptr);
    if (writer)
      write_checkpoint(cfg.checkpoint, ck);
  };

  typename Views<Scalar>::Images x_dev(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "lca::train::batch"),
      (cfg.batch_size + ranks - 1) / ranks, g.pixels());
  auto x_host = Kokkos::create_mirror_view(x_dev);
  // Images image_of(0 .. count - 1) into the device batch; the solver's view of them.
  const auto load = [&](std::int64_t count, const auto& image_of) {
    for (std::int64_t b = 0; b < count; ++b) {
      const float* img = image_of(b);
      for (int t = 0; t < g.pixels(); ++t)
        x_host(b, t) = img[t];
    }
    Kokkos::deep_copy(x_dev, x_host);
    return typename Views<Scalar>::ConstImages(
        Kokkos::subview(x_dev, std::make_pair(std::int64_t(0), count), Kokkos::ALL));
  };
  std::vector<std::int64_t> order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
  TrainSummary sum;
  const bool lasso = is_lasso(cfg.lca.transfer);
  // Running means of the last 10 % of batches for the summary (at least the last one).
  enum { energy, perr, nnz, images, gap_sum, its, polish_its, unconverged, n_sums };
  double acc[n_sums] = {};
  double run[n_sums] = {}, run_gap_max = 0; // the whole call
  const std::int64_t tail_from = images_seen + (total - images_seen) * 9 / 10;

  // Solves this rank's share x (images id(0 .. count - 1)), warm-started from `codes`.
  const auto solve_share = [&](const auto& x, const std::vector<SparseCode>& codes,
                               const auto& id) {
    const auto count = std::int64_t(x.extent(0));
    solver.reset(int(count));
    if (cfg.warm_start) {
      std::vector<const SparseCode*> start;
      for (std::int64_t b = 0; b < count; ++b)
        start.push_back(&codes[std::size_t(id(b))]);
      solver.warm_start(start);
    }
    return solver.solve(dict, x);
  };
  // With warm starts, every rank keeps the batch's codes (images id(0 .. n_batch - 1)) from
  // the solver's state of its share (count images). Collective.
  const auto keep_codes = [&](std::vector<SparseCode>& codes, std::int64_t count,
                              std::int64_t n_batch, const auto& id) {
    if (!cfg.warm_start)
      return;
    std::vector<SparseCode> batch =
        share_codes(count > 0 ? solver.codes() : std::vector<SparseCode>(), n_batch, comm);
    for (std::int64_t j = 0; j < n_batch; ++j)
      codes[std::size_t(id(j))] = std::move(batch[std::size_t(j)]);
  };

  // The validation images' mean energy, error and activity with the training solver's codes
  // (its certified stop), split over the ranks like a batch: one training-curve row.
  const auto validate = [&]() {
    const auto t0 = Clock::now();
    double local[4] = {}, global[4]; // energy, error, nnz, unconverged
    for (std::int64_t from = 0; from < validation->n; from += cfg.batch_size) {
      const int n_batch = int(std::min<std::int64_t>(cfg.batch_size, validation->n - from));
      const auto [first, count] = mpi::slice(n_batch, rank, ranks);
      const auto id = [&, first = first](std::int64_t b) { return from + first + b; };
      if (count > 0) {
        const auto x = load(count, [&](std::int64_t b) { return validation->image(id(b)); });
        const SolveInfo info = solve_share(x, warm.validation, id);
        const BatchStats st = solver.stats(x);
        for (int b = 0; b < count; ++b) {
          local[0] += st.energy(b, cfg.lca.transfer);
          local[1] += st.percent_error(b);
          local[2] += st.nnz[b];
        }
        local[3] += info.unconverged;
      }
      keep_codes(warm.validation, count, n_batch, [&](std::int64_t j) { return from + j; });
    }
    mpi::check(MPI_Allreduce(local, global, 4, MPI_DOUBLE, MPI_SUM, comm),
               "MPI_Allreduce of the validation statistics");
    const double n = double(validation->n);
    CurvePoint c;
    c.epoch = epoch + (position >= data.n ? 1 : 0);
    if (!std::isfinite(global[0]))
      throw NumericalError("non-finite validation energy after epoch " + std::to_string(c.epoch) +
                           "; the last checkpoint is kept");
    c.images_seen = images_seen;
    c.energy = global[0] / n, c.percent_error = global[1] / n;
    c.percent_active = 100.0 * global[2] / (n * double(g.neurons()));
    c.validation_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    c.seconds = elapsed();
    curve.push_back(c);
    const auto best_row = std::find_if(curve.begin(), curve.end(),
                                       [&](const CurvePoint& r) { return r.epoch == best_epoch; });
    if (best_row == curve.end() || c.energy < best_row->energy)
      best_epoch = c.epoch, best = dict.to_host();
    if (progress && rank == 0 && cfg.progress_seconds > 0) {
      char line[512]; // at most ~260 characters: the offsets below stay inside
      const double epoch_seconds =
          curve.size() > 1 ? c.seconds - curve[curve.size() - 2].seconds : c.seconds;
      int m = std::snprintf(line, sizeof line, "[train] validation after epoch %lld: energy %.6g",
                            (long long)c.epoch, c.energy);
      if (curve.size() > 1) {
        const double before = curve[curve.size() - 2].energy;
        m += std::snprintf(line + m, sizeof line - std::size_t(m), " (improvement %.3g%%%s)",
                           100.0 * (before - c.energy) / std::abs(before),
                           cfg.auto_epochs ? (", plateau below " +
                                              format_number(100.0 * cfg.plateau_tol, "%.3g") + "%")
                                                 .c_str()
                                           : "");
      }
      m += std::snprintf(
          line + m, sizeof line - std::size_t(m),
          "  error %.2f%%  active %.3f%%  %s  next eta %.3g  epoch %s (validation %s)",
          c.percent_error, c.percent_active, global[3] > 0 ? "SOME ABOVE --stop-gap" : "certified",
          eta_at(cfg.learn, c.epoch), format_duration(epoch_seconds).c_str(),
          format_duration(c.validation_seconds).c_str());
      if (cfg.auto_epochs && plateau() == Plateau::running && c.epoch > 0)
        std::snprintf(line + m, sizeof line - std::size_t(m), "  ETA to the cap %s",
                      format_duration(epoch_seconds * double(cfg.max_epochs - c.epoch)).c_str());
      *progress << line << std::endl;
    }
  };
  if (validation && curve.empty())
    validate(); // the initial dictionary: epoch 1's improvement is measured from it

  while (images_seen < total && plateau() == Plateau::running) {
    if (position >= data.n) {
      ++epoch, position = 0;
      order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
      learner.set_eta(eta_at(cfg.learn, epoch));
      if (cfg.auto_epochs) // the summary's means: the last epoch's batches
        std::fill(std::begin(acc), std::end(acc), 0.0);
    }
    const int n_batch =
        int(std::min<std::int64_t>({cfg.batch_size, data.n - position, total - images_seen}));
    const auto [first, count] = mpi::slice(n_batch, rank, ranks);
    double local[n_sums] = {}, local_gap_max = 0;
    const auto id = [&, first = first](std::int64_t b) { return order[position + first + b]; };
    if (count > 0) {
      const auto x = load(count, [&](std::int64_t b) { return data.image(id(b)); });
      const SolveInfo info = solve_share(x, warm.train, id);
      const BatchStats st = solver.stats(x);
      for (int b = 0; b < count; ++b) {
        local[energy] += st.energy(b, cfg.lca.transfer);
        local[perr] += st.percent_error(b);
        local[nnz] += st.nnz[b];
        if (lasso) {
          local[gap_sum] += info.certificates[b].gap;
          local_gap_max = std::max(local_gap_max, info.certificates[b].gap);
        }
      }
      local[images] = count;
      local[its] = info.iterations;
      local[polish_its] = info.polish_iterations;
      local[unconverged] = info.unconverged;
    }
    double global[n_sums], gap_max = 0;
    mpi::check(MPI_Allreduce(local, global, n_sums, MPI_DOUBLE, MPI_SUM, comm),
               "MPI_Allreduce of the batch statistics");
    mpi::check(MPI_Allreduce(&local_gap_max, &gap_max, 1, MPI_DOUBLE, MPI_MAX, comm),
               "MPI_Allreduce of the largest gap");
    // Ranks solve their shares in parallel: a batch takes as many iterations as its slowest.
    double local_its[2] = {local[its], local[polish_its]}, batch_its[2];
    mpi::check(MPI_Allreduce(local_its, batch_its, 2, MPI_DOUBLE, MPI_MAX, comm),
               "MPI_Allreduce of the iterations");
    global[its] = batch_its[0], global[polish_its] = batch_its[1];
    if (!std::isfinite(global[energy]) || !std::isfinite(global[perr]))
      throw NumericalError("non-finite energy in batch " + std::to_string(batches + 1) +
                           " (epoch " + std::to_string(epoch + 1) +
                           "); stopping, the last checkpoint is kept");
    keep_codes(warm.train, count, n_batch, [&](std::int64_t j) { return order[position + j]; });
    learner.update(dict, count > 0 ? &solver : nullptr, n_batch, gradient_sum);
    position += n_batch, images_seen += n_batch, ++batches;
    sum.images += n_batch, ++sum.batches;
    for (int i = 0; i < n_sums; ++i)
      run[i] += global[i];
    run_gap_max = std::max(run_gap_max, gap_max);
    if (cfg.auto_epochs || images_seen > tail_from || images_seen >= total) {
      for (int i = 0; i < n_sums; ++i)
        acc[i] += global[i];
    }

    if (validation && position >= data.n) {
      validate();
      if (keeps_best()) {
        dict.from_host(best); // the saved checkpoint and the summary hold the best dictionary
        if (progress && rank == 0 && cfg.progress_seconds > 0)
          *progress << "[train] epoch " << curve.back().epoch
                    << " raised the validation energy: keeping epoch " << best_epoch
                    << "'s dictionary" << std::endl;
      }
    }
    int stop = stop_requested, any_stop = 0;
    mpi::check(MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, comm),
               "MPI_Allreduce of the stop signal");
    const bool done = images_seen >= total || plateau() != Plateau::running;
    if (done || any_stop || (cfg.checkpoint_every > 0 && batches % cfg.checkpoint_every == 0))
      save();

    if (progress && rank == 0 && timer.due(done)) {
      char line[320];
      int n = std::snprintf(line, sizeof line,
                            "[train] epoch %lld  images %lld/%lld (%.1f%%)  %s  | energy "
                            "%.4g  error %.2f%%  active %.3f%%  it %.0f",
                            (long long)epoch + 1, (long long)images_seen, (long long)total,
                            100.0 * images_seen / total,
                            format_rate_eta(double(sum.images),
                                            double(sum.images + total - images_seen),
                                            timer.elapsed(), "img")
                                .c_str(),
                            global[energy] / global[images], global[perr] / global[images],
                            100.0 * global[nnz] / (global[images] * g.neurons()), global[its]);
      if (lasso && n > 0 && n < int(sizeof line))
        std::snprintf(line + n, sizeof line - n, "  gap %.2e (max %.2e)%s",
                      global[gap_sum] / global[images], gap_max,
                      global[unconverged] > 0 ? "  ABOVE --stop-gap" : "");
      *progress << line << std::endl;
    }
    if (any_stop && !done) {
      sum.interrupted = true;
      break;
    }
    if (cfg.after_batch)
      cfg.after_batch();
  }
  if (sum.batches > 0) {
    sum.mean_iterations = run[its] / double(sum.batches);
    sum.mean_polish_iterations = run[polish_its] / double(sum.batches);
    sum.unconverged = std::int64_t(run[unconverged]);
    if (lasso)
      sum.mean_gap = run[gap_sum] / run[images], sum.max_gap = run_gap_max;
  }
  sum.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  sum.images_per_second = sum.seconds > 0 ? sum.images / sum.seconds : 0;
  if (acc[images] > 0) {
    sum.mean_energy = acc[energy] / acc[images];
    sum.mean_percent_error = acc[perr] / acc[images];
    sum.mean_percent_active = 100.0 * acc[nnz] / (acc[images] * g.neurons());
  }
  sum.dictionary = dict.to_host();
  sum.curve = curve;
  sum.plateau = plateau();
  if (keeps_best())
    sum.kept_epoch = best_epoch;
  if (writer && !sum.interrupted)
    write_feature_montage(features_png_path(cfg.checkpoint), sum.dictionary.data(), g.nf,
                          g.channels, g.kernel);
  return sum;
}

} // namespace lca
