#pragma once
// The denoising test of algorithm.md §2 and §5 and the response function of §7: LCA
// inference on noisy test images with a trained dictionary, scored against the clean ones.
// denoise() itself, which takes an MPI communicator, is in lca/distributed.hpp.
#include "lca/dataset.hpp"
#include "lca/params.hpp"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace lca {

struct DenoiseConfig {
  double sigma = 0.5;           ///< noise level in units of the normalised image
  std::uint64_t noise_seed = 1; ///< counter-based: the same noise on every rank and backend
  int batch = 64;               ///< images per solve on each rank
  bool keep_codes = false;      ///< return the final activities (sparse)
  double response_epsilon = 0;  ///< > 0: also measure chi (§7) with this perturbation size
  std::uint64_t response_seed = 7;
  double progress_seconds = 10;
  /// Called on this rank after every batch (lca-scaling's rank 0 serves its work queue there).
  std::function<void()> after_batch;
};

/// Sparse final activities: neuron index = ((m * H/s) + y) * W/s + x within image `image`.
struct SparseCodes {
  std::vector<std::int64_t> image, neuron;
  std::vector<float> value;
};

struct DenoiseResult {
  // Per image, in dataset order (gathered on every rank).
  std::vector<double> error;       ///< 100 ||x - Phi a|| / ||x||, a inferred from x_noisy
  std::vector<double> mse;         ///< ||x - Phi a||^2 / pixels (squared-error metric)
  std::vector<double> noisy_error; ///< 100 ||x_noisy - x|| / ||x||: the baseline
  std::vector<double> active;      ///< percent active
  std::vector<double> energy;      ///< energy at the end of inference (against x_noisy)
  std::vector<double> response;    ///< ||a(x + eps eta) - a(x)|| / eps (when measured)
  /// Relative duality gap of the final code (soft presets; empty for hard thresholds).
  std::vector<double> gap;
  std::vector<double> iterations;        ///< solver iterations of the image's batch
  std::vector<double> polish_iterations; ///< support-solve rounds of the image's batch
  std::int64_t unconverged = 0;          ///< images above --stop-gap at the cap
  SparseCodes codes;                     ///< when keep_codes
  double seconds = 0;
};

/// Mean and standard error of the mean.
struct MeanSe {
  double mean = 0, se = 0;
};
MeanSe mean_se(const std::vector<double>& v);
/// Largest value (0 for an empty vector).
double max_of(const std::vector<double>& v);

/// x_noisy = x + sigma * n with n ~ N(0,1) drawn from (seed, image index, pixel): identical
/// whatever the rank count or backend.
void add_noise(float* image, std::int64_t n_pixels, std::int64_t image_index, double sigma,
               std::uint64_t seed);

/// What a results file records beside the per-image values.
struct DenoiseRecord {
  std::string checkpoint, dataset_identity;
  bool test_is_training = false; ///< the data is the checkpoint's training data (allowed)
  Preset preset = Preset::soft_nonneg;
  Geometry geometry;
  LcaParams lca;
  DenoiseConfig config;
};

/// Writes the results file atomically (schema in README.md, "lca-denoise results"):
/// root attributes with the summary and settings (test_is_training: 1 when the images are the
/// checkpoint's training data); /images/{error, noisy_error, active,
/// energy, mse[, response]} float64 (n); with codes, /codes/{image, neuron} int64 and
/// /codes/value float32 (nnz), neuron = (m * H/s + y) * W/s + x.
void write_denoise_results(const std::string& path, const DenoiseRecord& rec,
                           const DenoiseResult& res);

} // namespace lca
