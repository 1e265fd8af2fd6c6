// Statistics of the phase-transition study (algorithm.md §6, §7) and its plots.
#include "lca/analysis.hpp"
#include "lca/error.hpp"
#include "lca/random.hpp"
#include "lca/report.hpp"
#include "lca/scaling.hpp"
#include "plot.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using lca::SweepPoint;

constexpr double kNu = -1.32, kGamma = 0.00985;

double normal(lca::SplitMix64& rng) {
  const double u1 = rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * M_PI * u2);
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool have_gnuplot() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

// Synthetic sweep with known exponents: per size L = nf*196, p*(L) = 20 (L/784)^{1/nu},
// e*(L) = 30 (L/784)^{gamma/nu}, and error = e* + 5 t^2 with t = log(active/p*) exactly
// quadratic; lambda_j = 0.02 e^{0.3 j} puts t_j = shift - 0.3 (j - 5), so log(lambda) is linear
// in t. Per image: a common image factor (same image, all points) and independent noise; the
// errors of every other image are scaled by 1 + spread, of the others by 1 - spread: the means
// stay exact, and the minima's error bars (about 0.1) exceed the 0.05 that the vertex lies
// below the nearest grid point, so the minima are resolved.
struct Synthetic {
  std::vector<int> nf{4, 8, 16, 32, 64};
  int images = 40, grid = 11;
  double noise = 0.0, spread = 0.02;
  double shift = 0.1; // vertex between grid points
  double nu = kNu;
  int edge_nf = 0; // this size gets shift -2: minimum at the high-activity edge
  int v_nf = 0;    // this size's error is e* + 30 |t|: the parabola's vertex lies 0.375 below
                   // the lowest point
  std::uint64_t seed = 1;

  static double p_star(double L, double nu = kNu) { return 20 * std::pow(L / 784, 1 / nu); }
  static double e_star(double L) { return 30 * std::pow(L / 784, kGamma / kNu); }

  std::vector<SweepPoint> points() const {
    lca::SplitMix64 rng(seed);
    std::vector<double> image_factor(images);
    for (double& f : image_factor)
      f = 1 + noise * normal(rng);
    std::vector<SweepPoint> out;
    for (int n : nf) {
      const double L = 196.0 * n;
      for (int j = 0; j < grid; ++j) {
        const double t = (n == edge_nf ? -2.0 : shift) - 0.3 * (j - 5);
        const double active = p_star(L, nu) * std::exp(t),
                     error = e_star(L) + (n == v_nf ? 30 * std::abs(t) : 5 * t * t);
        SweepPoint p{n, std::int64_t(L), 0.02 * std::exp(0.3 * j), 0.0, {}, {}};
        for (int i = 0; i < images; ++i) {
          p.image_active.push_back(active * image_factor[std::size_t(i)] *
                                   (1 + noise * normal(rng)));
          p.image_error.push_back(error * image_factor[std::size_t(i)] *
                                  (i % 2 ? 1 - spread : 1 + spread) *
                                  (1 + 0.5 * noise * normal(rng)));
          p.percent_active += p.image_active.back() / images;
        }
        out.push_back(std::move(p));
      }
    }
    return out;
  }
};

// ---------------------------------------------------------------- find_minimum

TEST(FindMinimum, ExactParabolaInLogActiveRecoversVertex) {
  std::vector<double> active, error, lambda;
  for (int j = 0; j < 9; ++j) {
    const double t = -1.0 + 0.25 * j;
    active.push_back(std::exp(t));
    error.push_back(3.0 + 2.0 * (t - 0.37) * (t - 0.37));
    lambda.push_back(std::exp(-2.0 * t)); // log(lambda) linear in log(active)
  }
  const lca::Minimum m = lca::find_minimum(active, error, lambda);
  EXPECT_TRUE(m.refined);
  EXPECT_FALSE(m.at_edge);
  EXPECT_EQ(m.index, 5); // t = 0.25 is the nearest grid point
  EXPECT_NEAR(m.error, 3.0, 1e-6);
  EXPECT_NEAR(std::log(m.active), 0.37, 1e-6);
  EXPECT_NEAR(std::log(m.lambda), -0.74, 1e-6);
}

TEST(FindMinimum, UnsortedInputGivesSameMinimumAndCallerIndex) {
  const std::vector<double> t = {0.5, -1.0, 0.25, 1.0, -0.5, 0.0, 0.75, -0.25};
  std::vector<double> active, error, lambda;
  for (double v : t) {
    active.push_back(std::exp(v));
    error.push_back(1.0 + (v - 0.1) * (v - 0.1));
    lambda.push_back(std::exp(-v));
  }
  const lca::Minimum m = lca::find_minimum(active, error, lambda);
  EXPECT_EQ(m.index, 5); // t = 0.0
  EXPECT_TRUE(m.refined);
  EXPECT_NEAR(std::log(m.active), 0.1, 1e-9);
  EXPECT_NEAR(m.error, 1.0, 1e-9);
  EXPECT_NEAR(std::log(m.lambda), -0.1, 1e-9);
}

TEST(FindMinimum, RepeatedActivityKeepsDiscretePoint) {
  const lca::Minimum m = lca::find_minimum({1, 2, 2, 4}, {5, 3, 4, 6}, {4, 3, 2, 1});
  EXPECT_FALSE(m.refined);
  EXPECT_FALSE(m.at_edge);
  EXPECT_EQ(m.index, 1);
  EXPECT_EQ(m.error, 3);
  EXPECT_EQ(m.active, 2);
  EXPECT_EQ(m.lambda, 3);
}

// Nearly coincident activities with a steep drop: the parabola through them dives far below
// every point (here to about -460); the discrete point is kept instead.
TEST(FindMinimum, IllConditionedParabolaKeepsDiscretePoint) {
  const std::vector<double> t{0.0, 0.01, 1.0}, e{50, 30, 31}, lambda{0.9, 0.5, 0.2};
  std::vector<double> active;
  for (double v : t)
    active.push_back(std::exp(v));
  const lca::Minimum m = lca::find_minimum(active, e, lambda);
  EXPECT_FALSE(m.refined);
  EXPECT_EQ(m.error, 30);
  EXPECT_EQ(m.index, 1);
}

// The case: the vertex lies far below the lowest measured point (here 0.46 below 5 on an
// even grid). Beyond the point's error bar it is unresolved and the point is kept; within it,
// the vertex is the minimum; a NaN bar cannot judge it, so the point is kept.
TEST(FindMinimum, VertexBelowTheLowestPointsErrorBarIsUnresolved) {
  const std::vector<double> active{std::exp(-2.0), std::exp(-1.0), 1.0, std::exp(1.0)},
      error{12, 10, 5, 5.5}, lambda{4, 3, 2, 1};
  const double vertex = 5 - 4.5 * 4.5 / (8 * 5.5);
  lca::Minimum m = lca::find_minimum(active, error, lambda, {0.1, 0.1, 0.1, 0.1});
  EXPECT_TRUE(m.unresolved);
  EXPECT_FALSE(m.refined);
  EXPECT_FALSE(m.at_edge);
  EXPECT_EQ(m.index, 2);
  EXPECT_EQ(m.error, 5);
  EXPECT_EQ(m.active, 1);
  EXPECT_NEAR(m.vertex_error, vertex, 1e-12);
  // Only the lowest point's bar counts.
  m = lca::find_minimum(active, error, lambda, {9, 9, 0.1, 9});
  EXPECT_TRUE(m.unresolved);
  m = lca::find_minimum(active, error, lambda, {0.1, 0.1, 0.5, 0.1});
  EXPECT_FALSE(m.unresolved);
  EXPECT_TRUE(m.refined);
  EXPECT_NEAR(m.error, vertex, 1e-12);
  EXPECT_TRUE(std::isnan(m.vertex_error));
  EXPECT_EQ(m.error, lca::find_minimum(active, error, lambda).error); // no bars: unchecked
  m = lca::find_minimum(active, error, lambda, {0.1, 0.1, NAN, 0.1});
  EXPECT_FALSE(m.unresolved);
  EXPECT_FALSE(m.refined);
  EXPECT_EQ(m.error, 5);
  EXPECT_THROW(lca::find_minimum(active, error, lambda, {0.1, 0.1}), lca::InvalidArgument);
  EXPECT_THROW(lca::find_minimum(active, error, lambda, {0.1, -1, 0.1, 0.1}), lca::InvalidArgument);
}

TEST(FindMinimum, EdgeMinimumFlaggedOnEitherEnd) {
  // Lowest activity (largest lambda), given last.
  lca::Minimum m = lca::find_minimum({2, 4, 8, 1}, {3, 4, 5, 2}, {3, 2, 1, 4});
  EXPECT_TRUE(m.at_edge);
  EXPECT_FALSE(m.refined);
  EXPECT_EQ(m.index, 3);
  EXPECT_EQ(m.error, 2);
  // Highest activity, given first.
  m = lca::find_minimum({8, 1, 2, 4}, {1, 4, 3, 2}, {1, 4, 3, 2});
  EXPECT_TRUE(m.at_edge);
  EXPECT_EQ(m.index, 0);
  EXPECT_EQ(m.active, 8);
  // One or two points can only be edges.
  EXPECT_TRUE(lca::find_minimum({1}, {1}, {1}).at_edge);
}

TEST(FindMinimum, InvalidInputThrows) {
  EXPECT_THROW(lca::find_minimum({}, {}, {}), lca::InvalidArgument);
  EXPECT_THROW(lca::find_minimum({1, 2}, {1}, {1, 2}), lca::InvalidArgument);
  EXPECT_THROW(lca::find_minimum({0, 1, 2}, {3, 1, 2}, {3, 2, 1}), lca::InvalidArgument);
  EXPECT_THROW(lca::find_minimum({1, 2, 3}, {3, NAN, 2}, {3, 2, 1}), lca::InvalidArgument);
}

// ---------------------------------------------------------------- fit_power_law

TEST(FitPowerLaw, RecoversExactPowerLaw) {
  std::vector<double> x, y;
  for (int i = 0; i < 6; ++i) {
    x.push_back(3.0 * std::pow(2.0, i));
    y.push_back(2.5 * std::pow(x.back(), -0.7));
  }
  const lca::PowerLawFit f = lca::fit_power_law(x, y);
  EXPECT_EQ(f.n, 6);
  EXPECT_NEAR(f.slope, -0.7, 1e-6);
  EXPECT_NEAR(f.intercept, std::log(2.5), 1e-6);
  EXPECT_NEAR(f.r2, 1.0, 1e-12);
  EXPECT_LT(f.slope_se, 1e-6);
}

TEST(FitPowerLaw, TrueSlopeWithinThreeStandardErrorsOnNoisyData) {
  lca::SplitMix64 rng(42);
  std::vector<double> x, y;
  for (int i = 0; i < 30; ++i) {
    x.push_back(std::exp(0.2 * i));
    y.push_back(3.0 * std::pow(x.back(), 1.3) * std::exp(0.05 * normal(rng)));
  }
  const lca::PowerLawFit f = lca::fit_power_law(x, y);
  EXPECT_GT(f.slope_se, 0);
  EXPECT_LT(std::abs(f.slope - 1.3), 3 * f.slope_se);
  EXPECT_LT(std::abs(f.intercept - std::log(3.0)), 3 * f.intercept_se);
  EXPECT_GT(f.r2, 0.99);
}

TEST(FitPowerLaw, TwoPointsHaveNoStandardError) {
  const lca::PowerLawFit f = lca::fit_power_law({1, 10}, {2, 20});
  EXPECT_NEAR(f.slope, 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(f.slope_se));
  EXPECT_TRUE(std::isnan(f.intercept_se));
}

TEST(FitPowerLaw, InvalidInputThrows) {
  EXPECT_THROW(lca::fit_power_law({1}, {1}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_power_law({1, 2}, {1, 2, 3}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_power_law({1, -2}, {1, 2}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_power_law({1, 2}, {0, 2}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_power_law({2, 2, 2}, {1, 2, 3}), lca::InvalidArgument);
}

// ---------------------------------------------------------------- exponents

TEST(Exponents, RecoverSeedExponentsFromExactMinima) {
  std::vector<double> L, e, p;
  for (int n : {4, 8, 16, 32, 64}) {
    L.push_back(196.0 * n);
    e.push_back(Synthetic::e_star(L.back()));
    p.push_back(Synthetic::p_star(L.back()));
  }
  const lca::Exponents x = lca::exponents_from_minima(L, e, p);
  EXPECT_NEAR(x.nu, kNu, 1e-6);
  EXPECT_NEAR(x.gamma, kGamma, 1e-6);
  EXPECT_NEAR(x.loc_fit.slope, 1 / kNu, 1e-9);
  EXPECT_NEAR(x.val_fit.slope, kGamma / kNu, 1e-9);
  EXPECT_LT(x.nu_se, 1e-6);
  EXPECT_LT(x.gamma_se, 1e-6);
}

// n* = p*/100 · L of minima with a known slow growth n* ∝ L^0.067 (the converged Fashion-MNIST
// study): the count fit recovers it, and nu = 1/(0.067 - 1).
TEST(Exponents, CountFitRecoversTheGrowthOfActiveNeurons) {
  std::vector<double> L, e, p;
  for (int n : {8, 16, 32, 64}) {
    L.push_back(196.0 * n);
    e.push_back(30);
    p.push_back(100 * 224 * std::pow(L.back() / 1568, 0.067) / L.back());
  }
  const lca::Exponents x = lca::exponents_from_minima(L, e, p);
  EXPECT_NEAR(x.count_fit.slope, 0.067, 1e-9);
  EXPECT_NEAR(std::exp(x.count_fit.intercept) * std::pow(1568.0, 0.067), 224, 1e-6);
  EXPECT_NEAR(x.nu, 1 / (0.067 - 1), 1e-9);
  EXPECT_EQ(x.count_fit.n, 4);
}

TEST(Exponents, DeltaMethodStandardErrors) {
  // Noisy minima: se follow from the slopes' se as nu = 1/b, gamma = a/b.
  const std::vector<double> L = {1, 2, 4, 8, 16};
  const lca::Exponents x =
      lca::exponents_from_minima(L, {1.0, 1.1, 1.15, 1.3, 1.32}, {10, 6.5, 4.1, 2.3, 1.6});
  const double a = x.val_fit.slope, b = x.loc_fit.slope;
  EXPECT_NEAR(x.nu_se, x.loc_fit.slope_se / (b * b), 1e-12);
  EXPECT_NEAR(x.gamma_se * x.gamma_se,
              std::pow(x.val_fit.slope_se / b, 2) + std::pow(a * x.loc_fit.slope_se / (b * b), 2),
              1e-12);
}

TEST(Exponents, ConstantLocationThrows) {
  EXPECT_THROW(lca::exponents_from_minima({1, 2, 4}, {3, 2, 1}, {5, 5, 5}), lca::InvalidArgument);
}

// ---------------------------------------------------------------- analyze_study

TEST(AnalyzeStudy, ExactSweepRecoversExponentsAndMinima) {
  Synthetic s;
  const std::vector<SweepPoint> points = s.points();
  const lca::StudyResult r = lca::analyze_study(points, 20, 3);
  ASSERT_TRUE(r.valid) << r.warning;
  EXPECT_TRUE(r.warning.empty()) << r.warning;
  ASSERT_EQ(r.nf, s.nf);
  for (std::size_t k = 0; k < r.nf.size(); ++k) {
    EXPECT_DOUBLE_EQ(r.L[k], 196.0 * s.nf[k]);
    EXPECT_TRUE(r.minima[k].refined);
    EXPECT_NEAR(r.minima[k].error, Synthetic::e_star(r.L[k]), 1e-9);
    EXPECT_NEAR(r.minima[k].active, Synthetic::p_star(r.L[k]), 1e-9);
    EXPECT_NEAR(std::log(r.minima[k].lambda), std::log(0.02) + 0.3 * 5 + s.shift, 1e-9);
    EXPECT_EQ(points[std::size_t(r.minima[k].index)].nf, r.nf[k]);
  }
  EXPECT_NEAR(r.exponents.nu, kNu, 1e-6);
  EXPECT_NEAR(r.exponents.gamma, kGamma, 1e-6);
  EXPECT_NEAR(r.exponents.count_fit.slope, 1 + 1 / kNu, 1e-9);
  // Images differ only by a common factor of the errors, which moves no minimum: every draw
  // gives the exact exponents.
  EXPECT_EQ(r.bootstrap_failed, 0);
  EXPECT_NEAR(r.nu_lo, kNu, 1e-6);
  EXPECT_NEAR(r.nu_hi, kNu, 1e-6);
  EXPECT_NEAR(r.count_lo, 1 + 1 / kNu, 1e-6);
  EXPECT_NEAR(r.count_hi, 1 + 1 / kNu, 1e-6);
  EXPECT_EQ(r.nu_minus_one, lca::NullModel::outside);
  for (std::size_t k = 0; k < r.nf.size(); ++k) {
    EXPECT_FALSE(r.minima[k].unresolved);
    EXPECT_NEAR(r.n_star[k], Synthetic::p_star(r.L[k]) / 100 * r.L[k], 1e-9);
    EXPECT_NEAR(r.n_star_sd[k], r.minima[k].active_sd / 100 * r.L[k], 1e-12);
  }
}

TEST(AnalyzeStudy, NoisySweepExponentsWithinBootstrapInterval) {
  Synthetic s;
  s.noise = 0.01;
  const lca::StudyResult r = lca::analyze_study(s.points(), 400, 11);
  ASSERT_TRUE(r.valid) << r.warning;
  EXPECT_EQ(r.bootstrap_samples, 400);
  EXPECT_EQ(r.bootstrap_failed, 0);
  EXPECT_NEAR(r.exponents.nu, kNu, 0.1);
  EXPECT_NEAR(r.exponents.gamma, kGamma, 0.005);
  EXPECT_LT(r.nu_lo, kNu);
  EXPECT_GT(r.nu_hi, kNu);
  EXPECT_LT(r.gamma_lo, kGamma);
  EXPECT_GT(r.gamma_hi, kGamma);
  EXPECT_LT(r.nu_lo, r.exponents.nu);
  EXPECT_GT(r.nu_hi, r.exponents.nu);
  EXPECT_LT(r.count_lo, 1 + 1 / kNu);
  EXPECT_GT(r.count_hi, 1 + 1 / kNu);
  EXPECT_NEAR(r.count_sd, r.nu_sd / (r.exponents.nu * r.exponents.nu), 0.2 * r.count_sd);
  for (std::size_t k = 0; k < r.nf.size(); ++k)
    EXPECT_GT(r.n_star_sd[k], 0);
}

// The null model nu = -1 (n* independent of L) on both sides: a study with nu = -1 keeps -1 in
// its interval, one with the poster's -1.32 does not; without bootstrap it is untested.
TEST(AnalyzeStudy, NullModelNuMinusOneTestedOnBothSides) {
  Synthetic s;
  s.noise = 0.01;
  const lca::StudyResult poster = lca::analyze_study(s.points(), 400, 11);
  EXPECT_EQ(poster.nu_minus_one, lca::NullModel::outside) << poster.nu_lo << " " << poster.nu_hi;
  EXPECT_GT(poster.count_lo, 0);
  s.nu = -1;
  const lca::StudyResult null = lca::analyze_study(s.points(), 400, 11);
  EXPECT_EQ(null.nu_minus_one, lca::NullModel::inside) << null.nu_lo << " " << null.nu_hi;
  EXPECT_LT(null.count_lo, 0);
  EXPECT_GT(null.count_hi, 0);
  EXPECT_EQ(lca::analyze_study(s.points(), 0, 11).nu_minus_one, lca::NullModel::untested);
}

// A size whose parabola's vertex lies 0.375 below its lowest point, about four error bars: named,
// left out of the fits like an edge minimum; with ten times the spread across images (error
// bars about 1) the same curve is resolved and refined.
TEST(AnalyzeStudy, UnresolvedMinimumIsFlaggedAndLeftOut) {
  Synthetic s;
  s.v_nf = 16;
  for (int bootstrap : {0, 50}) {
    const lca::StudyResult r = lca::analyze_study(s.points(), bootstrap, 1);
    EXPECT_FALSE(r.valid);
    EXPECT_NE(r.warning.find(
                  "minimum unresolved for nf=16 (L=3136) (vertex 32.32, lowest point 32.69 ± "),
              std::string::npos)
        << r.warning;
    EXPECT_NE(r.warning.find("refine the lambda grid"), std::string::npos) << r.warning;
    const lca::Minimum& m = r.minima[2];
    EXPECT_TRUE(m.unresolved);
    EXPECT_FALSE(m.refined);
    EXPECT_NEAR(m.error, Synthetic::e_star(3136) + 3, 1e-9); // the lowest point, t = 0.1
    EXPECT_NEAR(m.vertex_error, m.error - 0.375, 1e-9);
    EXPECT_EQ(r.exponents.loc_fit.n, 4);
    EXPECT_NEAR(r.exponents.nu, kNu, 1e-6);
    EXPECT_EQ(r.bootstrap_failed, 0);
  }
  s.spread = 0.2;
  const lca::StudyResult wide = lca::analyze_study(s.points(), 0, 1);
  EXPECT_TRUE(wide.valid) << wide.warning;
  EXPECT_TRUE(wide.minima[2].refined);
  EXPECT_FALSE(wide.minima[2].unresolved);
}

TEST(AnalyzeStudy, BootstrapDeterministicPerSeed) {
  Synthetic s;
  s.noise = 0.01;
  const std::vector<SweepPoint> points = s.points();
  const lca::StudyResult a = lca::analyze_study(points, 100, 5);
  const lca::StudyResult b = lca::analyze_study(points, 100, 5);
  const lca::StudyResult c = lca::analyze_study(points, 100, 6);
  EXPECT_EQ(a.nu_lo, b.nu_lo);
  EXPECT_EQ(a.nu_hi, b.nu_hi);
  EXPECT_EQ(a.gamma_lo, b.gamma_lo);
  EXPECT_EQ(a.gamma_hi, b.gamma_hi);
  EXPECT_NE(a.nu_lo, c.nu_lo);
  EXPECT_NE(a.gamma_hi, c.gamma_hi);
  EXPECT_EQ(a.exponents.nu, c.exponents.nu); // the point estimate does not resample
}

TEST(AnalyzeStudy, EdgeMinimumMakesStudyInvalid) {
  Synthetic s;
  s.edge_nf = 16;
  const lca::StudyResult r = lca::analyze_study(s.points(), 10, 1);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.warning.find("nf=16 (L=3136)"), std::string::npos) << r.warning;
  EXPECT_NE(r.warning.find("widen the lambda range"), std::string::npos) << r.warning;
  EXPECT_TRUE(r.minima[2].at_edge);
  // The other four sizes still give the exponents.
  EXPECT_EQ(r.exponents.loc_fit.n, 4);
  EXPECT_NEAR(r.exponents.nu, kNu, 1e-6);
}

TEST(AnalyzeStudy, OneSizeHasNoExponents) {
  Synthetic s;
  s.nf = {8};
  const lca::StudyResult r = lca::analyze_study(s.points(), 10, 1);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.warning.find(">= 2 sizes"), std::string::npos) << r.warning;
  EXPECT_EQ(r.nu_minus_one, lca::NullModel::untested);
  EXPECT_TRUE(std::isnan(r.exponents.nu));
  EXPECT_TRUE(std::isnan(r.nu_lo));
  ASSERT_EQ(r.minima.size(), 1u);
  EXPECT_TRUE(r.minima[0].refined);
}

TEST(AnalyzeStudy, ZeroActivityPointsAreLeftOut) {
  Synthetic s;
  std::vector<SweepPoint> points = s.points();
  SweepPoint dead = points[0];
  dead.lambda = 100.0; // far above the grid: nothing active, error 100 %
  dead.percent_active = 0;
  std::fill(dead.image_active.begin(), dead.image_active.end(), 0.0);
  std::fill(dead.image_error.begin(), dead.image_error.end(), 100.0);
  points.push_back(dead);
  const lca::StudyResult r = lca::analyze_study(points, 10, 1);
  EXPECT_TRUE(r.valid) << r.warning;
  EXPECT_NEAR(r.exponents.nu, kNu, 1e-6);
}

TEST(AnalyzeStudy, InvalidInputThrows) {
  Synthetic s;
  const std::vector<SweepPoint> good = s.points();
  EXPECT_THROW(lca::analyze_study({}, 10, 1), lca::InvalidArgument);
  EXPECT_THROW(lca::analyze_study(good, -1, 1), lca::InvalidArgument);
  std::vector<SweepPoint> bad = good;
  bad[3].image_error.pop_back();
  EXPECT_THROW(lca::analyze_study(bad, 10, 1), lca::InvalidArgument);
  bad = good;
  bad[3].percent_active += 1.0;
  EXPECT_THROW(lca::analyze_study(bad, 10, 1), lca::InvalidArgument);
  bad = good;
  bad[3].lambda = bad[4].lambda;
  EXPECT_THROW(lca::analyze_study(bad, 10, 1), lca::InvalidArgument);
  bad = good;
  bad[3].system_size += 1;
  EXPECT_THROW(lca::analyze_study(bad, 10, 1), lca::InvalidArgument);
}

// ---------------------------------------------------------------- fit_response

TEST(FitResponse, SkipsNonPositiveChi) {
  std::vector<double> lambda, chi;
  for (int j = 0; j < 8; ++j) {
    lambda.push_back(0.01 * std::pow(2.0, j));
    chi.push_back(j >= 6 ? 0.0 : 0.4 * std::pow(lambda.back(), 0.2));
  }
  const lca::PowerLawFit f = lca::fit_response(lambda, chi);
  EXPECT_EQ(f.n, 6);
  EXPECT_NEAR(f.slope, 0.2, 1e-9);
  EXPECT_THROW(lca::fit_response({1, 2, 3}, {0, 0, 1}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_response({1, -2}, {1, 1}), lca::InvalidArgument);
  EXPECT_THROW(lca::fit_response({1, 2}, {1}), lca::InvalidArgument);
}

// ---------------------------------------------------------------- output

TEST(ResultsTable, CsvAndMarkdownCarryResultsAndSeedValues) {
  Synthetic s;
  s.noise = 0.01;
  const lca::StudyResult r = lca::analyze_study(s.points(), 50, 2);
  const fs::path dir = fs::path(testing::TempDir()) / "lca_test_results_table";
  fs::create_directories(dir);
  const lca::StudyResult sq = lca::analyze_study(s.points(), 50, 2);
  lca::write_results_table((dir / "r.csv").string(), (dir / "r.md").string(),
                           {{&lca::kPercentError, r}, {&lca::kSquaredError, sq}},
                           "synthetic study; exact power laws with 1 % noise");
  const std::string csv = read(dir / "r.csv"), md = read(dir / "r.md");
  EXPECT_EQ(csv.rfind("metric,kind,nf,L,lambda,replicates,flagged,error,error_sd,active,active_sd,"
                      "n_star,n_star_sd,at_edge,refined,unresolved,name,",
                      0),
            0u);
  EXPECT_NE(csv.find("percent,size,4,784,"), std::string::npos);
  EXPECT_NE(csv.find("percent,size,64,12544,"), std::string::npos);
  EXPECT_NE(csv.find("mse,size,64,12544,"), std::string::npos);
  EXPECT_NE(csv.find("percent,point,8,1568,"), std::string::npos);
  EXPECT_NE(csv.find("percent,exponent,,,,,,,,,,,,,,,gamma,"), std::string::npos);
  EXPECT_NE(csv.find("mse,exponent,,,,,,,,,,,,,,,nu,"), std::string::npos);
  EXPECT_NE(csv.find("percent,exponent,,,,,,,,,,,,,,,slope_n_star_vs_L,"), std::string::npos);
  // Every row has the header's 23 columns.
  for (std::size_t b = 0, e; (e = csv.find('\n', b)) != std::string::npos; b = e + 1)
    EXPECT_EQ(std::count(csv.begin() + long(b), csv.begin() + long(e), ','), 22)
        << csv.substr(b, e - b);
  // n* per size: p*/100 · L with its bootstrap sd.
  const std::string size64 = "percent,size,64,12544,";
  const std::size_t row = csv.find(size64);
  ASSERT_NE(row, std::string::npos);
  std::vector<std::string> cols;
  std::string line = csv.substr(row, csv.find('\n', row) - row), col;
  for (std::istringstream in(line); std::getline(in, col, ',');)
    cols.push_back(col);
  ASSERT_GE(cols.size(), 16u);
  EXPECT_NEAR(std::stod(cols[11]), r.minima[4].active / 100 * 12544, 1e-6);
  EXPECT_GT(std::stod(cols[12]), 0);
  EXPECT_EQ(cols[15], "false");
  EXPECT_NE(md.find("## Error metric: percent error"), std::string::npos);
  EXPECT_NE(md.find("## Error metric: mean squared error per pixel"), std::string::npos);
  EXPECT_NE(md.find("1 dictionary replicate and 40 test images (one replicate"), std::string::npos);
  EXPECT_NE(csv.find(",0.00985\n"), std::string::npos);
  EXPECT_NE(csv.find(",-1.32\n"), std::string::npos);
  EXPECT_EQ(md.rfind("# Phase-transition study", 0), 0u);
  EXPECT_NE(md.find("synthetic study; exact power laws"), std::string::npos);
  EXPECT_NE(md.find("seed poster (CIFAR-10, PetaVision)"), std::string::npos);
  EXPECT_NE(md.find("| 0.00985 |"), std::string::npos);
  EXPECT_NE(md.find("| -1.32 |"), std::string::npos);
  EXPECT_NE(md.find("bootstrap 95% interval"), std::string::npos);
  EXPECT_NE(md.find("| n* ∝ L^(1+1/ν) |"), std::string::npos);
  EXPECT_NE(md.find("| 1 + 1/ν (slope of n*) |"), std::string::npos);
  EXPECT_NE(md.find("n* = p*/100·L (active neurons)"), std::string::npos);
  EXPECT_NE(md.find("**Null model ν = −1** (the same number of active neurons n* at every size): "
                    "−1 lies outside ν's bootstrap 95 % interval"),
            std::string::npos)
      << md;
  EXPECT_FALSE(fs::exists(dir / "r.csv.tmp"));
  EXPECT_THROW(lca::write_results_table((dir / "missing" / "r.csv").string(),
                                        (dir / "r.md").string(), {{&lca::kPercentError, r}}, ""),
               lca::IoError);
}

TEST(Plot, StudyWritesThreePngs) {
  if (!have_gnuplot())
    GTEST_SKIP() << "gnuplot not installed";
  Synthetic s;
  s.noise = 0.01;
  const std::vector<SweepPoint> points = s.points();
  const lca::StudyResult r = lca::analyze_study(points, 100, 2);
  const fs::path dir = fs::path(testing::TempDir()) / "lca_test_plot_study";
  fs::remove_all(dir);
  lca::plot_study(dir.string(), r, lca::kPercentError);
  lca::plot_study(dir.string(), r, lca::kSquaredError);
  for (const char* png :
       {"error_vs_active.png", "min_error_vs_L.png", "min_location_vs_L.png", "min_count_vs_L.png",
        "error_vs_active_mse.png", "min_error_vs_L_mse.png", "min_count_vs_L_mse.png"}) {
    ASSERT_TRUE(fs::exists(dir / png)) << png;
    EXPECT_GT(fs::file_size(dir / png), 1000u) << png;
    EXPECT_EQ(read(dir / png).substr(1, 3), "PNG") << png;
    EXPECT_FALSE(fs::exists(dir / (std::string(png) + ".tmp"))) << png;
  }
  EXPECT_TRUE(fs::exists(dir / "study.gp"));
  EXPECT_TRUE(fs::exists(dir / "study_curves.dat"));
  EXPECT_TRUE(fs::exists(dir / "study_minima.dat"));
  EXPECT_FALSE(fs::exists(dir / "study.gp.log"));
  // Error bars: the bootstrap sd of every entry is in the data and drawn.
  EXPECT_NE(read(dir / "study.gp").find("yerrorlines"), std::string::npos);
  EXPECT_NE(read(dir / "study.gp").find("yerrorbars"), std::string::npos);
  EXPECT_NE(read(dir / "study.gp").find("null model ν = −1"), std::string::npos);
  for (const std::string& f : lca::plot_files(dir.string()))
    if (fs::path(f).extension() == ".png" && f.find("response") == std::string::npos)
      EXPECT_TRUE(fs::exists(f)) << f;

  lca::StudyResult broken = r;
  broken.curves.pop_back();
  EXPECT_THROW(lca::plot_study(dir.string(), broken, lca::kPercentError), lca::InvalidArgument);
}

TEST(Plot, StudyWithEdgeAndUnresolvedMinimaStillPlots) {
  if (!have_gnuplot())
    GTEST_SKIP() << "gnuplot not installed";
  Synthetic s;
  s.edge_nf = 16;
  s.v_nf = 32;
  const std::vector<SweepPoint> points = s.points();
  const fs::path dir = fs::path(testing::TempDir()) / "lca_test_plot_edge";
  lca::plot_study(dir.string(), lca::analyze_study(points, 0, 1), lca::kPercentError);
  EXPECT_GT(fs::file_size(dir / "min_location_vs_L.png"), 1000u);
  EXPECT_GT(fs::file_size(dir / "min_count_vs_L.png"), 1000u);
  EXPECT_NE(read(dir / "study.gp").find("n* unresolved"), std::string::npos);
}

TEST(Plot, ResponseWritesPng) {
  if (!have_gnuplot())
    GTEST_SKIP() << "gnuplot not installed";
  std::vector<lca::ResponseCurve> curves;
  std::vector<lca::PowerLawFit> fits;
  for (int n : {8, 32}) {
    lca::ResponseCurve c{n, 196 * n, {}, {}};
    for (int j = 0; j < 8; ++j) {
      c.lambda.push_back(0.02 * std::pow(1.5, j));
      c.chi.push_back(j == 7 ? 0.0 : 0.1 * n * std::pow(c.lambda.back(), 0.3 + 0.01 * (j % 3)));
    }
    fits.push_back(lca::fit_response(c.lambda, c.chi));
    curves.push_back(std::move(c));
  }
  const fs::path dir = fs::path(testing::TempDir()) / "lca_test_plot_response";
  lca::plot_response(dir.string(), curves, fits);
  EXPECT_GT(fs::file_size(dir / "response.png"), 1000u);
  EXPECT_TRUE(fs::exists(dir / "response.gp"));
  fits.pop_back();
  EXPECT_THROW(lca::plot_response(dir.string(), curves, fits), lca::InvalidArgument);
}

// Runs f with PATH replaced, restoring it afterwards.
template <class F> void with_path(const std::string& path, F f) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  setenv("PATH", path.c_str(), 1);
  try {
    f();
  } catch (...) {
    setenv("PATH", saved.c_str(), 1);
    throw;
  }
  setenv("PATH", saved.c_str(), 1);
}

TEST(Plot, FailingGnuplotIsAnIoErrorWithItsOutput) {
  const fs::path bin = fs::path(testing::TempDir()) / "lca_test_fake_gnuplot";
  fs::create_directories(bin);
  {
    std::ofstream fake(bin / "gnuplot");
    fake << "#!/bin/sh\necho 'line 3: unknown terminal boom' >&2\nexit 1\n";
  }
  fs::permissions(bin / "gnuplot", fs::perms::owner_all);
  Synthetic s;
  const std::vector<SweepPoint> points = s.points();
  const lca::StudyResult r = lca::analyze_study(points, 0, 1);
  const fs::path dir = fs::path(testing::TempDir()) / "lca_test_plot_failing";
  with_path(bin.string() + ":/usr/bin:/bin", [&] {
    try {
      lca::plot_study(dir.string(), r, lca::kPercentError);
      ADD_FAILURE() << "expected IoError";
    } catch (const lca::IoError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("gnuplot failed"), std::string::npos) << what;
      EXPECT_NE(what.find("unknown terminal boom"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  });
  EXPECT_FALSE(fs::exists(dir / "error_vs_active.png"));
}

TEST(Plot, MissingGnuplotIsAnIoError) {
  Synthetic s;
  const std::vector<SweepPoint> points = s.points();
  const lca::StudyResult r = lca::analyze_study(points, 0, 1);
  with_path("/nonexistent", [&] {
    try {
      lca::plot_study((fs::path(testing::TempDir()) / "lca_test_plot_nognuplot").string(), r,
                      lca::kPercentError);
      ADD_FAILURE() << "expected IoError";
    } catch (const lca::IoError& e) {
      EXPECT_NE(std::string(e.what()).find("gnuplot not found"), std::string::npos) << e.what();
    }
  });
}

// ---------------------------------------------------------------- replicates, two-level bootstrap

// A study with R dictionary replicates per point: replicate r of point (size, lambda) shifts
// the whole curve entry by an independent N(0, rep_noise) (a dictionary trained with other
// seeds), on top of per-image noise. The exact curves are those of Synthetic (9 grid points),
// with the vertex 0.03 from a grid point: 0.0045 below it, well inside the minima's error bars
// (about 0.07), so that noise rarely makes a minimum unresolved.
std::vector<SweepPoint> replicated_points(int replicates, double rep_noise, double image_noise,
                                          int images, std::uint64_t seed) {
  lca::SplitMix64 rng(seed);
  std::vector<SweepPoint> out;
  for (int n : {4, 8, 16, 32}) {
    const double L = 196.0 * n;
    for (int j = 1; j < 10; ++j) {
      const double t = 0.03 - 0.3 * (j - 5);
      const double active = Synthetic::p_star(L) * std::exp(t);
      const double error = Synthetic::e_star(L) + 5 * t * t;
      for (int r = 0; r < replicates; ++r) {
        const double shift = rep_noise * normal(rng);
        SweepPoint p{n, std::int64_t(L), 0.02 * std::exp(0.3 * j), 0.0, {}, {}, r, false};
        for (int i = 0; i < images; ++i) {
          p.image_active.push_back(active);
          p.image_error.push_back(error + shift + image_noise * normal(rng));
        }
        p.percent_active = active;
        out.push_back(std::move(p));
      }
    }
  }
  return out;
}

TEST(AnalyzeStudy, ReplicatesAreAveragedAndResampled) {
  const auto points = replicated_points(3, 0.2, 0.5, 20, 4);
  const lca::StudyResult r = lca::analyze_study(points, 200, 1);
  EXPECT_EQ(r.replicates, 3);
  EXPECT_EQ(r.images, 20);
  ASSERT_EQ(r.curves.size(), 4u);
  const lca::SizeCurve& c = r.curves[0];
  ASSERT_EQ(c.lambda.size(), 9u);
  double mean = 0;
  for (std::size_t i : c.points[0]) {
    EXPECT_EQ(points[i].lambda, c.lambda[0]);
    for (double e : points[i].image_error)
      mean += e / 60;
  }
  EXPECT_EQ(c.replicates[0], 3);
  EXPECT_NEAR(c.error[0], mean, 1e-12);
  // Error bars exist for every entry and for the fitted minima.
  for (const lca::SizeCurve& cc : r.curves)
    for (double sd : cc.error_sd)
      EXPECT_GT(sd, 0.0);
  for (const lca::Minimum& m : r.minima) {
    EXPECT_GT(m.error_sd, 0.0);
    EXPECT_GT(m.active_sd, 0.0);
  }
  EXPECT_GT(r.gamma_sd, 0.0);
  // The same (nf, lambda, replicate) twice is refused.
  auto twice = points;
  twice.push_back(points[0]);
  EXPECT_THROW(lca::analyze_study(twice, 10, 1), lca::InvalidArgument);
}

// The two-level intervals cover the true exponents at about their nominal 95 % over seeded
// repetitions of a study whose replicate noise dominates; resampling the test images alone
// (one replicate's worth of information, the old analysis) covers far less often.
TEST(AnalyzeStudy, TwoLevelBootstrapCoversTheTruthAtNominalRate) {
  const int repetitions = 60;
  int covered_gamma = 0, covered_nu = 0, covered_images_only = 0;
  for (int k = 0; k < repetitions; ++k) {
    const auto points = replicated_points(8, 0.15, 0.3, 12, 1000 + k);
    const lca::StudyResult r = lca::analyze_study(points, 200, 77 + k);
    ASSERT_FALSE(std::isnan(r.gamma_lo)) << r.warning;
    covered_gamma += r.gamma_lo <= kGamma && kGamma <= r.gamma_hi;
    covered_nu += r.nu_lo <= kNu && kNu <= r.nu_hi;
    // Images only: the replicates relabelled as one (each point keeps replicate 0's values).
    std::vector<SweepPoint> one;
    for (const auto& p : points)
      if (p.replicate == 0)
        one.push_back(p);
    // Its error bars miss the replicate noise, so minima can come out unresolved and leave no
    // interval (NaN: compared without trapping), which covers nothing.
    const lca::StudyResult o = lca::analyze_study(one, 200, 77 + k);
    covered_images_only +=
        std::islessequal(o.gamma_lo, kGamma) && std::islessequal(kGamma, o.gamma_hi);
  }
  EXPECT_GE(covered_gamma, int(0.85 * repetitions));
  EXPECT_GE(covered_nu, int(0.85 * repetitions));
  EXPECT_LT(covered_images_only, int(0.75 * repetitions));
}

TEST(AnalyzeStudy, FlaggedPointsAreLeftOutUnlessIncluded) {
  Synthetic s;
  std::vector<SweepPoint> points = s.points();
  // Make the true minimum's neighbour of nf=8 the lowest point, but flagged: left out, the
  // minimum stays where it was; included, it moves.
  std::size_t k = 0;
  for (; k < points.size(); ++k)
    if (points[k].nf == 8 && std::abs(points[k].lambda - 0.02 * std::exp(0.3 * 7)) < 1e-12)
      break;
  ASSERT_LT(k, points.size());
  for (double& e : points[k].image_error)
    e -= 20;
  points[k].flagged = true;
  const lca::StudyResult out = lca::analyze_study(points, 0, 1);
  const lca::StudyResult in = lca::analyze_study(points, 0, 1, true);
  EXPECT_EQ(out.flagged, 1);
  EXPECT_NEAR(out.minima[1].error, Synthetic::e_star(196.0 * 8), 1e-9);
  EXPECT_LT(in.minima[1].error, Synthetic::e_star(196.0 * 8) - 10);
  EXPECT_TRUE(in.include_flagged);
  // A size whose points are all flagged is not fitted, and the study says why.
  for (auto& p : points)
    if (p.nf == 16)
      p.flagged = true;
  const lca::StudyResult none = lca::analyze_study(points, 0, 1);
  EXPECT_FALSE(none.valid);
  EXPECT_NE(none.warning.find("nf=16 (L=3136) is flagged"), std::string::npos) << none.warning;
  EXPECT_EQ(none.exponents.loc_fit.n, 4);
}

// ---------------------------------------------------------------- refinement

// Refinement on a curve with a known minimum: starting from a coarse grid (also one whose
// minimum is at an edge), repeated rounds bracket the true lambda* to the stated width.
TEST(Refinement, BracketsAKnownMinimumToTheStatedWidth) {
  const double lambda_star = 0.37, width = 0.05;
  const auto curve_at = [&](double lambda) {
    return 20 + 3 * std::pow(std::log(lambda / lambda_star), 2);
  };
  for (std::vector<double> grid : {std::vector<double>{0.05, 0.1, 0.2, 0.4, 0.8, 1.6},
                                   std::vector<double>{0.6, 0.9, 1.35, 2.0}}) {
    lca::SizeCurve c;
    c.nf = 8, c.system_size = 1568;
    const auto add = [&](double l) {
      c.lambda.push_back(l);
      c.active.push_back(10 / l);
      c.error.push_back(curve_at(l));
      c.flagged.push_back(0);
    };
    for (double l : grid)
      add(l);
    int rounds = 0;
    for (std::vector<double> more; !(more = lca::refinement_lambdas(c, width)).empty(); ++rounds) {
      ASSERT_LT(rounds, 30);
      for (double l : more)
        add(l);
      // keep the curve sorted by lambda, as size_curves does
      std::vector<std::size_t> o(c.lambda.size());
      for (std::size_t i = 0; i < o.size(); ++i)
        o[i] = i;
      std::sort(o.begin(), o.end(), [&](auto a, auto b) { return c.lambda[a] < c.lambda[b]; });
      lca::SizeCurve sorted = c;
      for (std::size_t i = 0; i < o.size(); ++i)
        sorted.lambda[i] = c.lambda[o[i]], sorted.active[i] = c.active[o[i]],
        sorted.error[i] = c.error[o[i]];
      c = sorted;
    }
    EXPECT_GT(rounds, 0);
    std::size_t m = 0;
    for (std::size_t j = 1; j < c.error.size(); ++j)
      if (c.error[j] < c.error[m])
        m = j;
    ASSERT_GT(m, 0u);
    ASSERT_LT(m + 1, c.lambda.size());
    EXPECT_LE(c.lambda[m + 1] / c.lambda[m - 1] - 1, width);
    EXPECT_LT(c.lambda[m - 1], lambda_star);
    EXPECT_GT(c.lambda[m + 1], lambda_star);
  }
  lca::SizeCurve c;
  EXPECT_THROW(lca::refinement_lambdas(c, 0.0), lca::InvalidArgument);
}

} // namespace
