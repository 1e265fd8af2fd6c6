#include "lca/train.hpp"

#include "lca/core.hpp"
#include "lca/error.hpp"
#include "lca/image_png.hpp"
#include "lca/learner.hpp"
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

/// Rank r's share [first, first + count) of a global batch of n images.
std::pair<int, int> my_slice(int n, int rank, int ranks) {
  const int first = int(std::int64_t(n) * rank / ranks);
  return {first, int(std::int64_t(n) * (rank + 1) / ranks) - first};
}

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

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0)
    return "?";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
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
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);

  Dictionary<Scalar> dict(g);
  Learner<Scalar> learner(g, cfg.learn);
  LcaSolver<Scalar> solver(g, cfg.lca);
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
  auto last_print = start;
  auto save = [&]() {
    const double elapsed =
        elapsed_before + std::chrono::duration<double>(Clock::now() - start).count();
    const Checkpoint ck =
        snapshot(cfg, dict, learner, data, epoch, position, images_seen, batches, elapsed);
    if (writer)
      write_checkpoint(cfg.checkpoint, ck);
  };

  typename Views<Scalar>::Images x_dev("lca::train::batch", (cfg.batch_size + ranks - 1) / ranks,
                                       g.pixels());
  auto x_host = Kokkos::create_mirror_view(x_dev);
  std::vector<std::int64_t> order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
  TrainSummary sum;
  // Running means of the last 10 % of batches for the summary (at least the last one).
  double acc[4] = {0, 0, 0, 0}; // energy, percent error, nonzeros, images
  const std::int64_t tail_from = images_seen + (total - images_seen) * 9 / 10;

  while (images_seen < total) {
    if (position >= data.n) {
      ++epoch, position = 0;
      order = epoch_order(data.n, cfg.shuffle_seed, epoch, cfg.shuffle);
    }
    const int n_batch =
        int(std::min<std::int64_t>({cfg.batch_size, data.n - position, total - images_seen}));
    const auto [first, count] = my_slice(n_batch, rank, ranks);
    double local[4] = {0, 0, 0, 0};
    if (count > 0) {
      for (int b = 0; b < count; ++b) {
        const float* img = data.image(order[position + first + b]);
        for (int t = 0; t < g.pixels(); ++t)
          x_host(b, t) = img[t];
      }
      Kokkos::deep_copy(x_dev, x_host);
      const typename Views<Scalar>::ConstImages x =
          Kokkos::subview(x_dev, std::make_pair(0, count), Kokkos::ALL);
      solver.reset(count);
      solver.solve(dict, x);
      const BatchStats st = solver.stats(x);
      for (int b = 0; b < count; ++b) {
        local[0] += st.energy(b, cfg.lca.transfer);
        local[1] += st.percent_error(b);
        local[2] += st.nnz[b];
      }
      local[3] = count;
    }
    double global[4];
    MPI_Allreduce(local, global, 4, MPI_DOUBLE, MPI_SUM, comm);
    if (!std::isfinite(global[0]) || !std::isfinite(global[1]))
      throw NumericalError("non-finite energy in batch " + std::to_string(batches + 1) +
                           " (epoch " + std::to_string(epoch + 1) +
                           "); stopping, the last checkpoint is kept");
    learner.update(dict, count > 0 ? &solver : nullptr, n_batch, comm);
    position += n_batch, images_seen += n_batch, ++batches;
    sum.images += n_batch, ++sum.batches;
    if (images_seen > tail_from || images_seen >= total) {
      for (int i = 0; i < 4; ++i)
        acc[i] += global[i];
    }

    int stop = stop_requested, any_stop = 0;
    MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, comm);
    const bool done = images_seen >= total;
    if (done || any_stop || (cfg.checkpoint_every > 0 && batches % cfg.checkpoint_every == 0))
      save();

    const auto now = Clock::now();
    if (progress && rank == 0 && cfg.progress_seconds > 0 &&
        (std::chrono::duration<double>(now - last_print).count() >= cfg.progress_seconds || done)) {
      last_print = now;
      const double secs = std::chrono::duration<double>(now - start).count();
      const double rate = sum.images / secs;
      char line[256];
      std::snprintf(line, sizeof line,
                    "[train] epoch %lld  images %lld/%lld (%.1f%%)  %.1f img/s  ETA %s  | energy "
                    "%.4g  error %.2f%%  active %.3f%%",
                    (long long)epoch + 1, (long long)images_seen, (long long)total,
                    100.0 * images_seen / total, rate,
                    format_duration((total - images_seen) / rate).c_str(), global[0] / global[3],
                    global[1] / global[3], 100.0 * global[2] / (global[3] * g.neurons()));
      *progress << line << std::endl;
    }
    if (any_stop && !done) {
      sum.interrupted = true;
      break;
    }
  }
  sum.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  sum.images_per_second = sum.seconds > 0 ? sum.images / sum.seconds : 0;
  if (acc[3] > 0) {
    sum.mean_energy = acc[0] / acc[3];
    sum.mean_percent_error = acc[1] / acc[3];
    sum.mean_percent_active = 100.0 * acc[2] / (acc[3] * g.neurons());
  }
  sum.dictionary = dict.to_host();
  if (writer && !sum.interrupted)
    write_feature_montage(features_png_path(cfg.checkpoint), sum.dictionary.data(), g.nf,
                          g.channels, g.kernel);
  return sum;
}

} // namespace lca
