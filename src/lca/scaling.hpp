#pragma once
// The phase-transition study of algorithm.md §6: a grid of sizes (nf) x sparsities (lambda),
// each point trained and then denoise-tested, collected in one HDF5 sweep file that is
// rewritten atomically after every point (so a kill never loses or corrupts finished points).
// On a cluster the points run side by side in groups of MPI ranks (SweepConfig::groups), or
// one scheduler job per point (SweepConfig::only_points, then merge_sweeps). run_sweep, which
// takes an MPI communicator, is in lca/distributed.hpp.
#include "lca/analysis.hpp"
#include "lca/dataset.hpp"
#include "lca/denoise.hpp"
#include "lca/report.hpp"
#include "lca/train.hpp"

#include <cmath>
#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lca {

/// How a sweep trains its dictionaries; --mode, sweep files and settings texts name it by its
/// to_string text.
enum class SweepMode {
  full,     ///< one dictionary per (nf, lambda, replicate)
  reference ///< one per (nf, replicate) at reference_lambda, tested at every lambda (cheaper)
};
/// "full" or "reference".
const char* to_string(SweepMode m);

struct SweepConfig {
  std::vector<int> sizes;           ///< nf values
  std::vector<double> lambdas;      ///< lambda grid (tested at every size)
  SweepMode mode = SweepMode::full; ///< (labelled in every output)
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
  /// MPI groups that run points side by side (run_sweep); each splits every batch of its point
  /// over its ranks. 1: all ranks on one point at a time.
  int groups = 1;
  /// Job-array mode: only grid points [first, last] of grid_points(), each written to its own
  /// point file (point_file) instead of the sweep file. Needs refine = 0.
  std::optional<std::pair<std::size_t, std::size_t>> only_points;
};

/// A point of the study: what to train and test, and the refinement round that added it.
struct PointId {
  int nf = 0;
  double lambda = 0;
  int replicate = 0;
  int round = 0; ///< 0: a grid point
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
  /// --epochs auto: 1 if the plateau rule stopped the training, 0 if it hit the epoch cap
  /// without a plateau (flagged in the analysis); NaN for a fixed number of epochs.
  double train_plateau = NAN;
  double train_epochs = NAN; ///< epochs trained (NaN in files that predate it)
  /// The epoch whose dictionary was kept after the last one raised the validation energy (NaN:
  /// the last epoch's, or a file that predates it).
  double train_kept_epoch = NAN;
  /// The checkpoint's training curve, rows of 7 (CurvePoint's fields in order); empty without
  /// a validation set.
  std::vector<double> train_curve;
  std::vector<double> image_error, image_active, image_response;
  std::vector<double> image_mse; ///< squared-error metric; empty in files that predate it
};

struct Sweep {
  SweepMode mode = SweepMode::full;
  std::string settings; ///< a canonical description; reruns must match it
  double reference_lambda = 0;
  std::vector<SweepRecord> points;
};

/// The grid in its fixed order: nf-major (as in cfg.sizes), then lambda (as in cfg.lambdas), then
/// replicate, so point i = (size_i * n_lambdas + lambda_j) * replicates + r (--only-points i).
std::vector<PointId> grid_points(const SweepConfig& cfg);
/// The points cfg runs: the grid, or the only_points slice of it. Throws InvalidArgument for a
/// slice outside the grid or with refine > 0.
std::vector<PointId> selected_points(const SweepConfig& cfg);

/// "nf=<nf> lambda=<lambda>[ replicate <r>]", for progress lines and messages.
std::string describe_point(int nf, double lambda, int replicate);
/// The sweep file's path inside out_dir.
std::string sweep_path(const std::string& out_dir);
/// Where job-array mode writes a point: <out_dir>/points/nf<nf>_lambda<lambda>[_rep<r>]/point.h5,
/// a sweep file holding that one point.
std::string point_file(const SweepConfig& cfg, const PointId& p);
/// Every file run_sweep may write: the sweep file (or the selected points' point files), each
/// point's checkpoint and feature montage.
std::vector<std::string> sweep_outputs(const SweepConfig& cfg);
/// Canonical text of everything that defines the results of a grid point.
std::string sweep_settings(const SweepConfig& cfg, const ImageSet& train, const ImageSet& test);
/// Throws IoError for a missing or foreign file (or one with an unknown mode).
Sweep read_sweep(const std::string& path);
void write_sweep(const std::string& path, const Sweep& s); ///< atomic

/// The sweep files in an out dir: sweep.h5 if it exists, then points/*/point.h5 in name order.
std::vector<std::string> sweep_files_in(const std::string& out_dir);

/// Combines sweep files (point files are sweep files too): every file's settings must equal the
/// first's (else InvalidArgument naming the file and the first setting that differs). A point
/// (nf, lambda, replicate) found in several files is kept once (how many, on `log`); if its
/// values differ (anything but the seconds it took and its round), InvalidArgument naming both
/// files.
Sweep merge_sweeps(const std::vector<std::string>& files, std::ostream* log);

/// What run_sweep (lca/distributed.hpp) did; complete on rank 0 of its comm only.
struct SweepRun {
  Sweep sweep;           ///< every finished point (with only_points: those of the selection)
  std::size_t added = 0; ///< points finished by this call
  bool interrupted = false;
};

/// Sweep records as the analysis takes them, scored by `metric` (kPercentError or
/// kSquaredError; throws InvalidArgument if the sweep lacks the metric). A point is flagged when
/// images of its denoising test stayed above --stop-gap at the iteration cap, or when its
/// --epochs auto training hit the epoch cap without a plateau.
std::vector<SweepPoint> to_points(const Sweep& s, const Metric& metric);

/// chi(lambda) per size (mean over replicates), for the sizes whose points measured it.
std::vector<ResponseCurve> response_curves(const Sweep& s);

/// The lambda values refinement adds for one size, from its curve (see SweepConfig::refine):
/// none once the unflagged minimum's neighbours are within `width`. Values are rounded to the 6
/// significant digits that name a point. Throws InvalidArgument for width <= 0.
std::vector<double> refinement_lambdas(const SizeCurve& c, double width);

} // namespace lca
