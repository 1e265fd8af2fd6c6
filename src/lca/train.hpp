#pragma once
// The training loop of algorithm.md §4 over a dataset, with MPI batch decomposition,
// progress, atomic checkpoints and exact resume. lca-train and lca-scaling both call it;
// train() itself, which takes an MPI communicator, is in lca/distributed.hpp.
#include "lca/checkpoint.hpp"
#include "lca/dataset.hpp"
#include "lca/params.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace lca {

struct TrainConfig {
  Geometry geometry; ///< channels/height/width must match the data
  LcaParams lca;
  LearnParams learn;
  Preset preset = Preset::soft_nonneg; ///< recorded in checkpoints (custom for vertices)
  int batch_size = 16;                 ///< global batch, split across ranks
  std::int64_t epochs = 1;
  std::int64_t max_images = 0; ///< 0: epochs * n; else stop after this many images
  /// --epochs auto: train epoch after epoch until the plateau rule (plateau_status) stops, at
  /// most max_epochs epochs; needs a validation set. `epochs` and max_images are then unused.
  bool auto_epochs = false;
  double plateau_tol = 1e-3; ///< relative improvement of the validation energy per epoch
  std::int64_t max_epochs = 30;
  /// Held-out images (never trained on) whose mean energy, with the training solver's codes, is
  /// measured before the first epoch and after every epoch (the training curve); null: none.
  const ImageSet* validation = nullptr;
  bool shuffle = true;
  std::uint64_t shuffle_seed = 1;
  /// Start each image's solve from its code of the previous epoch (validation images too), as
  /// PetaVision carries its membrane potentials; soft presets. The codes go into every
  /// checkpoint (sparse), so a resumed run stays bit for bit the uninterrupted one.
  bool warm_start = false;
  std::string checkpoint;              ///< path of the checkpoint file (rank 0 writes it)
  std::int64_t checkpoint_every = 100; ///< batches between checkpoints (0: only at the end)
  double progress_seconds = 10;        ///< seconds between progress lines (0: none)
  /// Called on this rank after every batch (lca-scaling's rank 0 serves its work queue there).
  std::function<void()> after_batch;
};

/// Where the plateau rule stands.
enum class Plateau {
  running, ///< keep training
  reached, ///< an epoch improved the validation energy by less than the tolerance
  cap      ///< max_epochs epochs done, each improving by at least the tolerance
};
/// The plateau rule on the validation energies after 0, 1, 2, ... epochs: reached at the first
/// epoch e >= 1 with (E[e-1] - E[e]) / |E[e-1]| < tol (a rise counts as no improvement), else
/// cap once max_epochs epochs are done. *epochs (optional) receives the epoch it stopped at.
Plateau plateau_status(const std::vector<double>& energies, double tol, std::int64_t max_epochs,
                       std::int64_t* epochs = nullptr);
/// "reached", "cap" or "running" (checkpoint attribute, progress lines).
const char* to_string(Plateau p);

struct TrainSummary {
  std::int64_t images = 0, batches = 0; ///< done in this call
  double seconds = 0, images_per_second = 0;
  /// Means over the last 10 % of batches (--epochs auto: over the last epoch's batches).
  double mean_energy = 0, mean_percent_error = 0, mean_percent_active = 0;
  /// Over the whole call: solver iterations per batch, support-solve rounds per batch, and the
  /// relative duality gap of the final codes (soft presets; NaN for hard thresholds).
  double mean_iterations = 0, mean_polish_iterations = 0;
  double mean_gap = NAN, max_gap = NAN;
  std::int64_t unconverged = 0; ///< images that reached the cap above --stop-gap
  bool interrupted = false;     ///< stopped by SIGINT/SIGTERM after a checkpoint
  /// The whole training curve (earlier runs of a resumed training included); empty without a
  /// validation set. `plateau` is running for a fixed number of epochs.
  std::vector<CurvePoint> curve;
  Plateau plateau = Plateau::running;
  /// --epochs auto stopped by a rise of the validation energy: the dictionary is this earlier
  /// epoch's, the lowest validation energy (-1: the last epoch's dictionary is kept).
  std::int64_t kept_epoch = -1;
  std::vector<float> dictionary; ///< the final dictionary, (nf, c, k, k)
};

/// Where train() puts the feature montage: <checkpoint dir>/<checkpoint stem>_features.png.
std::string features_png_path(const std::string& checkpoint);

/// SIGINT/SIGTERM make train() finish its batch, checkpoint and return (interrupted = true).
void install_stop_handlers();
/// The signal (SIGINT or SIGTERM) that arrived since install_stop_handlers(), or 0.
int stop_signal();

} // namespace lca
