#pragma once
// The phase-transition study of algorithm.md §6: a grid of sizes (nf) x sparsities (lambda),
// each point trained and then denoise-tested, collected in one HDF5 sweep file that is
// rewritten atomically after every point (so a kill never loses or corrupts finished points).
#include "lca/analysis.hpp"
#include "lca/dataset.hpp"
#include "lca/denoise.hpp"
#include "lca/report.hpp"
#include "lca/train.hpp"

#include <mpi.h>

#include <cmath>
#include <iosfwd>
#include <string>
#include <vector>

namespace lca {

struct SweepConfig {
  std::vector<int> sizes;      ///< nf values
  std::vector<double> lambdas; ///< lambda grid (tested at every size)
  /// "full": train one dictionary per (nf, lambda); "reference": train once per nf at
  /// reference_lambda and test it at every lambda (cheaper; labelled in every output).
  std::string mode = "full";
  double reference_lambda = 0.5;
  /// Dictionaries per (nf, lambda), each with its own initialisation seed and training-image
  /// order (replicate 0 uses the given seeds, so one replicate is the classic sweep).
  int replicates = 1;
  /// Refinement rounds after the grid: each adds lambda points around every size's minimum
  /// (bisection in log lambda between the minimum and its neighbours, or one grid step beyond an
  /// edge minimum) until lambda_hi / lambda_lo - 1 <= refine_width for the minimum's neighbours.
  int refine = 0;
  double refine_width = 0.3;
  TrainConfig train; ///< everything but nf, lambda and the checkpoint path
  DenoiseConfig test;
  /// The denoising test's --stop-gap; NaN: the training's (train.lca.stop_gap).
  double test_stop_gap = NAN;
  /// The test images are training images, as --allow-train-as-test allowed: labelled in the
  /// settings (and so in the analysis).
  bool test_is_training = false;
  std::string out_dir = "results/study"; ///< sweep.h5 and points/<name>/checkpoint.h5
};

/// One finished grid point as stored in the sweep file.
struct SweepRecord {
  int nf = 0;
  std::int64_t system_size = 0;
  int replicate = 0;    ///< dictionary replicate (its own seeds)
  int refine_round = 0; ///< 0: a grid point; k: added by refinement round k
  double lambda = 0, train_lambda = 0;
  double percent_active = 0, error_mean = 0, error_se = 0, noisy_error_mean = 0;
  double energy_mean = 0, response_mean = 0, seconds = 0;
  /// The test's inference: solver iterations per batch (mean), relative duality gap of the
  /// codes (mean, max; NaN for hard thresholds), images above --stop-gap at the cap.
  double iterations_mean = 0, gap_mean = NAN, gap_max = NAN, unconverged = 0;
  /// The training's codes: gap mean/max over its batches, images above --stop-gap at the cap
  /// (NaN when unknown: hard thresholds, reference mode's reused dictionaries, old files).
  double train_gap_mean = NAN, train_gap_max = NAN, train_unconverged = NAN;
  double train_seconds = NAN; ///< of `seconds`, the training's (NaN when not trained here)
  std::vector<double> image_error, image_active, image_response;
  std::vector<double> image_mse; ///< squared-error metric; empty in files that predate it
};

struct Sweep {
  std::string mode, settings; ///< settings: a canonical description; reruns must match it
  double reference_lambda = 0;
  std::vector<SweepRecord> points;
};

/// The sweep file's path inside out_dir.
std::string sweep_path(const std::string& out_dir);
/// Every file run_sweep may write: the sweep file, each point's checkpoint and feature montage.
std::vector<std::string> sweep_outputs(const SweepConfig& cfg);
/// Canonical text of everything that defines the results of a grid point.
std::string sweep_settings(const SweepConfig& cfg, const ImageSet& train, const ImageSet& test);
Sweep read_sweep(const std::string& path); ///< throws IoError for a missing or foreign file
void write_sweep(const std::string& path, const Sweep& s); ///< atomic

/// Runs the grid, skipping finished points and resuming half-trained ones from their
/// checkpoints. Collective over comm; rank 0 writes. Returns the complete sweep.
Sweep run_sweep(const SweepConfig& cfg, const ImageSet& train, const ImageSet& test, MPI_Comm comm,
                std::ostream* progress);

/// Sweep records as the analysis takes them, scored by `metric` (kPercentError or
/// kSquaredError; throws InvalidArgument if the sweep lacks the metric). A point is flagged when
/// images of its denoising test stayed above --stop-gap at the iteration cap.
std::vector<SweepPoint> to_points(const Sweep& s, const Metric& metric);

/// chi(lambda) per size (mean over replicates), for the sizes whose points measured it.
std::vector<ResponseCurve> response_curves(const Sweep& s);

/// The lambda values refinement adds for one size, from its curve (see SweepConfig::refine):
/// none once the unflagged minimum's neighbours are within `width`. Values are rounded to the 6
/// significant digits that name a point. Throws InvalidArgument for width <= 0.
std::vector<double> refinement_lambdas(const SizeCurve& c, double width);

} // namespace lca
