// The distributed layer: the MPI helpers, and training and denoising split over the ranks of
// MPI_COMM_WORLD against one process doing everything (ctest runs these at 1, 2 and 4 ranks:
// uneven shares, and ranks with no image).
#include "lca/checkpoint.hpp"
#include "lca/denoise.hpp"
#include "lca/distributed.hpp"
#include "lca/error.hpp"
#include "lca/mpi.hpp"
#include "lca/train.hpp"
#include "reference.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <unistd.h>

namespace lca::test {
namespace {

Geometry small_gray() {
  Geometry g;
  g.channels = 1, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
  return g;
}

ImageSet random_images(const Geometry& g, std::int64_t n, unsigned seed) {
  ImageSet data;
  data.n = n, data.channels = g.channels, data.height = g.height, data.width = g.width;
  const auto v = random_vector(std::size_t(n) * g.pixels(), seed);
  data.pixels.assign(v.begin(), v.end());
  data.labels.assign(std::size_t(n), -1);
  data.identity = "random";
  return data;
}

TEST(MpiHelpers, CheckThrowsWithMpisMessage) {
  EXPECT_NO_THROW(mpi::check(MPI_SUCCESS, "MPI_Nothing"));
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  ASSERT_EQ(MPI_Error_string(MPI_ERR_COUNT, text, &len), MPI_SUCCESS);
  try {
    mpi::check(MPI_ERR_COUNT, "MPI_Something");
    FAIL() << "expected lca::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "MPI_Something failed: " + std::string(text, len));
  }
}

TEST(MpiHelpers, SlicesCoverTheBatchInRankOrder) {
  for (int ranks : {1, 2, 3, 4, 7})
    for (std::int64_t n : {0, 1, 3, 10}) {
      std::int64_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const mpi::Slice s = mpi::slice(n, r, ranks);
        EXPECT_EQ(s.first, next) << n << " over " << ranks;
        EXPECT_GE(s.count, n / ranks);
        EXPECT_LE(s.count, (n + ranks - 1) / ranks);
        next += s.count;
      }
      EXPECT_EQ(next, n);
    }
}

TEST(MpiHelpers, EveryRankGetsRankZerosDecision) {
  const int rank = mpi::rank(MPI_COMM_WORLD);
  EXPECT_TRUE(mpi::from_rank0(MPI_COMM_WORLD, [&] { return rank == 0; }));
  EXPECT_EQ(mpi::from_rank0(MPI_COMM_WORLD, [&] { return "rank " + std::to_string(rank); }),
            "rank 0");
}

// Batches of 3 (the last of 1) split over the ranks; the gradients are summed: the same
// dictionary as one process up to the order of the sums.
TEST(TrainMpi, ResultIndependentOfRankCount) {
  TrainConfig cfg;
  cfg.geometry = small_gray();
  cfg.lca.transfer = make_transfer(Preset::soft_nonneg, 0.05);
  cfg.lca.iterations = 20, cfg.lca.tau = 10;
  cfg.learn.eta = 0.1;
  cfg.batch_size = 3;
  cfg.progress_seconds = 0;
  const ImageSet data = random_images(cfg.geometry, 7, 31);
  const TrainSummary split = train(cfg, data, std::nullopt, MPI_COMM_WORLD, nullptr);
  const TrainSummary whole = train(cfg, data, std::nullopt, MPI_COMM_SELF, nullptr);
  EXPECT_EQ(split.images, 7);
  EXPECT_EQ(split.batches, 3);
  EXPECT_NEAR(split.mean_energy, whole.mean_energy, 1e-5 * whole.mean_energy);
  ASSERT_EQ(split.dictionary.size(), whole.dictionary.size());
  for (std::size_t i = 0; i < whole.dictionary.size(); ++i)
    ASSERT_NEAR(split.dictionary[i], whole.dictionary[i], 1e-5) << i;
}

TEST(PlateauRule, StopsAtTheFirstSmallImprovementOrAtTheCap) {
  std::int64_t at = -1;
  // Improvements 50 %, 20 %, 0.05 %: a plateau at epoch 3 for a tolerance of 0.1 %.
  const std::vector<double> flattening{10, 5, 4, 3.998, 3.99};
  EXPECT_EQ(plateau_status(flattening, 1e-3, 10, &at), Plateau::reached);
  EXPECT_EQ(at, 3);
  EXPECT_EQ(plateau_status({10, 5, 4}, 1e-3, 10, &at), Plateau::running);
  EXPECT_EQ(at, 2);
  EXPECT_EQ(plateau_status({10, 5, 4}, 1e-3, 2, &at), Plateau::cap);
  EXPECT_EQ(at, 2);
  EXPECT_EQ(plateau_status({10, 5, 4.9999}, 1e-3, 2, &at), Plateau::reached); // at the cap
  EXPECT_EQ(plateau_status({10, 10.5}, 1e-3, 5, &at), Plateau::reached);      // a rise
  EXPECT_EQ(at, 1);
  EXPECT_EQ(plateau_status({10, 9}, 0.2, 5), Plateau::reached); // 10 % < 20 %
  EXPECT_EQ(plateau_status({10}, 1e-3, 1), Plateau::running);
  EXPECT_EQ(plateau_status({}, 1e-3, 1), Plateau::running);
}

/// Images made of two stripe patterns with random amplitudes plus a little noise: a structure
/// that a random dictionary codes badly and a learned one well.
ImageSet striped_images(const Geometry& g, std::int64_t n, unsigned seed) {
  ImageSet data = random_images(g, n, seed);
  const auto amplitude = random_vector(std::size_t(2 * n), seed + 1);
  for (std::int64_t i = 0; i < n; ++i)
    for (int y = 0; y < g.height; ++y)
      for (int x = 0; x < g.width; ++x) {
        float& p = data.image(i)[y * g.width + x];
        p = 0.05f * p + float(amplitude[std::size_t(2 * i)]) * (x % 4 < 2 ? 1.f : -1.f) +
            float(amplitude[std::size_t(2 * i + 1)]) * (y % 4 < 2 ? 1.f : -1.f);
      }
  return data;
}

/// --epochs auto on striped images (certified FISTA codes, batches of 4, at most 40 epochs) at
/// the rate eta / (1 + e / eta_decay_epochs); validated on `validation`.
TrainConfig plateau_training(double eta, double eta_decay_epochs, double plateau_tol,
                             const ImageSet& validation) {
  TrainConfig cfg;
  cfg.geometry = small_gray();
  cfg.lca.transfer = make_transfer(Preset::soft_nonneg, 0.05);
  cfg.lca.solver = Solver::fista, cfg.lca.iterations = 500, cfg.lca.stop_gap = 1e-3;
  cfg.learn.eta = eta, cfg.learn.momentum_tau = 0, cfg.learn.eta_decay_epochs = eta_decay_epochs;
  cfg.batch_size = 4;
  cfg.progress_seconds = 0;
  cfg.auto_epochs = true, cfg.plateau_tol = plateau_tol, cfg.max_epochs = 40;
  cfg.validation = &validation;
  return cfg;
}

/// Training to a plateau: the learning rate falls as eta / (1 + 4 e), so the dictionary stops
/// moving and the validation energy flattens within a few epochs; validated split over the ranks
/// like a batch, the curve is one process's up to the order of the sums.
TEST(TrainPlateau, StopsWhenTheValidationEnergyFlattens) {
  const ImageSet data = striped_images(small_gray(), 12, 31);
  const ImageSet validation = striped_images(small_gray(), 5, 33);
  TrainConfig cfg = plateau_training(0.5, 0.25, 1e-3, validation);
  const TrainSummary split = train(cfg, data, std::nullopt, MPI_COMM_WORLD, nullptr);
  const TrainSummary whole = train(cfg, data, std::nullopt, MPI_COMM_SELF, nullptr);
  std::string energies;
  for (const CurvePoint& c : whole.curve)
    energies += " " + std::to_string(c.energy);
  EXPECT_EQ(whole.plateau, Plateau::reached) << energies;
  ASSERT_GE(whole.curve.size(), 3u) << energies; // the initial row and at least two epochs
  EXPECT_LT(whole.curve.size(), 41u);
  EXPECT_LT(whole.curve[1].energy, whole.curve[0].energy); // learning lowers it at first
  EXPECT_EQ(whole.images, 12 * whole.curve.back().epoch);
  for (std::size_t e = 0; e < whole.curve.size(); ++e) {
    EXPECT_EQ(whole.curve[e].epoch, std::int64_t(e));
    EXPECT_EQ(whole.curve[e].images_seen, 12 * std::int64_t(e));
  }
  ASSERT_EQ(split.curve.size(), whole.curve.size());
  for (std::size_t e = 0; e < whole.curve.size(); ++e)
    EXPECT_NEAR(split.curve[e].energy, whole.curve[e].energy, 1e-4 * whole.curve[e].energy);

  // One epoch at most: the first epoch's large improvement leaves the cap without a plateau.
  cfg.max_epochs = 1;
  const TrainSummary capped = train(cfg, data, std::nullopt, MPI_COMM_WORLD, nullptr);
  EXPECT_EQ(capped.plateau, Plateau::cap);
  EXPECT_EQ(capped.curve.size(), 2u);
}

/// A constant rate too large for the problem makes some epoch raise the validation energy: the
/// rule stops there and keeps the epoch before it, exactly the dictionary of a run of that many
/// epochs, and the checkpoint holds it (dictionary and best_dictionary) with best_epoch.
TEST(TrainPlateau, KeepsTheBestDictionaryWhenAnEpochRaisesTheEnergy) {
  const ImageSet data = striped_images(small_gray(), 12, 31);
  const ImageSet validation = striped_images(small_gray(), 5, 33);
  TrainConfig cfg = plateau_training(0.7, 0, 0, validation);
  cfg.checkpoint = (std::filesystem::temp_directory_path() /
                    ("lca-keep-best-" + std::to_string(::getpid()) + ".h5"))
                       .string();
  const TrainSummary s = train(cfg, data, std::nullopt, MPI_COMM_SELF, nullptr);
  std::string energies;
  for (const CurvePoint& c : s.curve)
    energies += " " + std::to_string(c.energy);
  ASSERT_GE(s.curve.size(), 3u) << energies;
  const std::int64_t last = s.curve.back().epoch;
  // The case this test exists for: better epochs, then a rise.
  ASSERT_LT(s.curve[1].energy, s.curve[0].energy) << energies;
  ASSERT_GT(s.curve.back().energy, s.curve[std::size_t(last - 1)].energy) << energies;
  EXPECT_EQ(s.plateau, Plateau::reached);
  EXPECT_EQ(s.kept_epoch, last - 1) << energies;
  EXPECT_EQ(s.images, 12 * last); // the rising epoch was trained, then undone

  const Checkpoint ck = read_checkpoint(cfg.checkpoint);
  std::filesystem::remove(cfg.checkpoint);
  EXPECT_EQ(ck.best_epoch, last - 1);
  EXPECT_EQ(ck.dictionary, s.dictionary);
  EXPECT_EQ(ck.best_dictionary, s.dictionary);
  EXPECT_EQ(ck.plateau, "reached");

  cfg.auto_epochs = false, cfg.epochs = last - 1, cfg.checkpoint.clear();
  const TrainSummary shorter = train(cfg, data, std::nullopt, MPI_COMM_SELF, nullptr);
  EXPECT_EQ(shorter.kept_epoch, -1);
  EXPECT_EQ(shorter.dictionary, s.dictionary); // bit for bit: the same batches and rates
}

// One image per solve, so every image's result is the same on any rank: the gathered results
// must equal a single process's exactly, in dataset order.
TEST(DenoiseMpi, ResultsIndependentOfRankCount) {
  const Geometry g = small_gray();
  LcaParams p;
  p.transfer = make_transfer(Preset::soft, 0.1);
  p.solver = Solver::fista, p.iterations = 200, p.stop_gap = 1e-4;
  const auto w = random_vector(std::size_t(g.nf) * g.patch(), 41);
  const std::vector<float> dictionary(w.begin(), w.end());
  DenoiseConfig cfg;
  cfg.sigma = 0.2, cfg.batch = 1, cfg.keep_codes = true, cfg.response_epsilon = 1e-3;
  cfg.progress_seconds = 0;
  const ImageSet data = random_images(g, 3, 43);
  const DenoiseResult split = denoise(g, p, dictionary, data, cfg, MPI_COMM_WORLD, nullptr);
  const DenoiseResult whole = denoise(g, p, dictionary, data, cfg, MPI_COMM_SELF, nullptr);
  ASSERT_EQ(whole.error.size(), std::size_t(data.n));
  EXPECT_EQ(split.error, whole.error);
  EXPECT_EQ(split.mse, whole.mse);
  EXPECT_EQ(split.noisy_error, whole.noisy_error);
  EXPECT_EQ(split.active, whole.active);
  EXPECT_EQ(split.energy, whole.energy);
  EXPECT_EQ(split.iterations, whole.iterations);
  EXPECT_EQ(split.gap, whole.gap);
  EXPECT_EQ(split.response, whole.response);
  EXPECT_EQ(split.unconverged, whole.unconverged);
  EXPECT_EQ(split.codes.image, whole.codes.image);
  EXPECT_EQ(split.codes.neuron, whole.codes.neuron);
  EXPECT_EQ(split.codes.value, whole.codes.value);
}

} // namespace
} // namespace lca::test
