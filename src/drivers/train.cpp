#include "lca/train.hpp"

#include "lca/core.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/image_png.hpp"
#include "lca/learner.hpp"
#include "lca/mpi.hpp"
#include "lca/version.hpp"

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

Checkpoint snapshot(const TrainConfig& cfg, const Dictionary<Scalar>& dict,
                    const Learner<Scalar>& learner, const ImageSet& data, std::int64_t epoch,
                    std::int64_t position, std::int64_t images_seen, std::int64_t batches,
                    double elapsed) {
  Checkpoint ck;
  ck.geometry = cfg.geometry;
  ck.lca = cfg.lca;
  ck.learn = cfg.learn;
  ck.batch_size = cfg.batch_size;
  ck.epochs = cfg.epochs;
  ck.max_images = cfg.max_images;
  ck.shuffle = cfg.shuffle;
  ck.shuffle_seed = cfg.shuffle_seed;
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

} // namespace

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
  if (cfg.epochs < 1 && cfg.max_images < 1)
    throw InvalidArgument("nothing to do: epochs and images are both < 1");
  const int rank = mpi::rank(comm), ranks = mpi::size(comm);

  Dictionary<Scalar> dict(g);
  Learner<Scalar> learner(g, cfg.learn);
  LcaSolver<Scalar> solver(g, cfg.lca);
  // One rank has nothing to sum (and skips the host round trip of the gradient).
  const Learner<Scalar>::SumInPlace gradient_sum =
      ranks > 1 ? mpi::sum_in_place<Scalar>(comm) : Learner<Scalar>::SumInPlace();
  std::int64_t epoch = 0, position = 0, images_seen = 0, batches = 0;
  double elapsed_before = 0;
  if (resume) {
    dict.from_host(resume->dictionary);
    learner.momentum_from_host(resume->momentum);
    epoch = resume->epoch, position = resume->position_in_epoch;
    images_seen = resume->images_seen, batches = resume->batches;
    elapsed_before = resume->elapsed_seconds;
  } else {
    dict.init_random(cfg.learn.seed);
  }
  const std::int64_t total = cfg.max_images > 0 ? cfg.max_images : cfg.epochs * data.n;
  const bool writer = rank == 0 && !cfg.checkpoint.empty();
  const auto start = Clock::now();
  ProgressTimer timer(cfg.progress_seconds);
  auto save = [&]() {
    const double elapsed =
        elapsed_before + std::chrono::duration<double>(Clock::now() - start).count();
    const Checkpoint ck =
        snapshot(cfg, dict, learner, data, epoch, position, images_seen, batches, elapsed);
    if (writer)
      write_checkpoint(cfg.checkpoint, ck);
  };

  typename Views<Scalar>::Images x_dev(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "lca::train::batch"),
      (cfg.batch_size + ranks - 1) / ranks, g.pixels());
  auto x_host = Kokkos::create_mirror_view(x_dev);
  std::vector<std::int64_t> order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
  TrainSummary sum;
  const bool lasso = is_lasso(cfg.lca.transfer);
  // Running means of the last 10 % of batches for the summary (at least the last one).
  enum { energy, perr, nnz, images, gap_sum, its, polish_its, unconverged, n_sums };
  double acc[n_sums] = {};
  double run[n_sums] = {}, run_gap_max = 0; // the whole call
  const std::int64_t tail_from = images_seen + (total - images_seen) * 9 / 10;

  while (images_seen < total) {
    if (position >= data.n) {
      ++epoch, position = 0;
      order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
    }
    const int n_batch =
        int(std::min<std::int64_t>({cfg.batch_size, data.n - position, total - images_seen}));
    const auto [first, count] = mpi::slice(n_batch, rank, ranks);
    double local[n_sums] = {}, local_gap_max = 0;
    if (count > 0) {
      for (int b = 0; b < count; ++b) {
        const float* img = data.image(order[position + first + b]);
        for (int t = 0; t < g.pixels(); ++t)
          x_host(b, t) = img[t];
      }
      Kokkos::deep_copy(x_dev, x_host);
      const typename Views<Scalar>::ConstImages x =
          Kokkos::subview(x_dev, std::make_pair(std::int64_t(0), count), Kokkos::ALL);
      solver.reset(int(count));
      const SolveInfo info = solver.solve(dict, x);
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
    learner.update(dict, count > 0 ? &solver : nullptr, n_batch, gradient_sum);
    position += n_batch, images_seen += n_batch, ++batches;
    sum.images += n_batch, ++sum.batches;
    for (int i = 0; i < n_sums; ++i)
      run[i] += global[i];
    run_gap_max = std::max(run_gap_max, gap_max);
    if (images_seen > tail_from || images_seen >= total) {
      for (int i = 0; i < n_sums; ++i)
        acc[i] += global[i];
    }

    int stop = stop_requested, any_stop = 0;
    mpi::check(MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, comm),
               "MPI_Allreduce of the stop signal");
    const bool done = images_seen >= total;
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
  if (writer && !sum.interrupted)
    write_feature_montage(features_png_path(cfg.checkpoint), sum.dictionary.data(), g.nf,
                          g.channels, g.kernel);
  return sum;
}

} // namespace lca
