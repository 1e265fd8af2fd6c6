// LCA's dynamics: transfer functions, the LASSO optimality (KKT) of its fixed point, energy
// descent, the early stop and OpenPV's adaptive time scale.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <cmath>
#include <limits>

namespace lca::test {
namespace {

template <class T> struct LcaDynamics : ::testing::Test {};
TYPED_TEST_SUITE(LcaDynamics, Configs, ConfigNames);

TEST(Transfer, PresetsOnTabulatedInputs) {
  struct Row {
    Preset preset;
    double v, a;
  };
  constexpr Preset soft_nonneg = Preset::soft_nonneg, hard_nonneg = Preset::hard_nonneg,
                   soft = Preset::soft, hard = Preset::hard;
  const Row rows[] = {{soft_nonneg, -1.0, 0.0}, {soft_nonneg, 0.4, 0.0},  {soft_nonneg, 0.5, 0.0},
                      {soft_nonneg, 0.7, 0.2},  {soft_nonneg, 2.0, 1.5},  {hard_nonneg, 0.4, 0.0},
                      {hard_nonneg, 0.7, 0.7},  {hard_nonneg, -0.7, 0.0}, {soft, -0.7, -0.2},
                      {soft, 0.3, 0.0},         {soft, -0.3, 0.0},        {soft, 1.5, 1.0},
                      {hard, -0.7, -0.7},       {hard, 0.49, 0.0},        {hard, -0.49, 0.0}};
  for (const auto& r : rows) {
    const DeviceTransfer<double> t(make_transfer(r.preset, 0.5));
    EXPECT_NEAR(t(r.v), r.a, 1e-15) << r.preset << " at V=" << r.v;
  }
}

TEST(Transfer, GeneralVertices) {
  // PetaVision's general form: VThresh 1, AMin 0.25, ramp of width 1 to the line V - 0.5,
  // clipped at AMax 2.
  Transfer p;
  p.vthresh = 1, p.amin = 0.25, p.vwidth = 1, p.ashift = 0.5, p.amax = 2, p.lambda = 1;
  const DeviceTransfer<double> t(p);
  const double table[][2] = {{-3, 0.25}, {0.99, 0.25}, {1.0, 0.25}, {1.5, 0.875},
                             {2.0, 1.5}, {2.4, 1.9},   {3.0, 2.0},  {100, 2.0}};
  for (const auto& row : table)
    EXPECT_NEAR(t(row[0]), row[1], 1e-12) << "V=" << row[0];
  p.amax = 0; // below AMin
  EXPECT_THROW(validate(p), InvalidArgument);
  p.amax = 2, p.vwidth = -1;
  EXPECT_THROW(validate(p), InvalidArgument);
}

// At a fixed point of soft LCA the LASSO KKT conditions hold exactly (algorithm.md §3).
TYPED_TEST(LcaDynamics, ConvergesToLassoKkt) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const bool is_float = std::is_same<S, float>::value;
  // How close 6000 steps get to the fixed point (convergence, not rounding).
  const double lambda = 0.2, converged = is_float ? 2e-4 : 1e-7;
  const Geometry g = small_conv();
  for (const Preset preset : {Preset::soft, Preset::soft_nonneg}) {
    SCOPED_TRACE(to_string(preset));
    Dictionary<S, Sp, L> d(g);
    d.init_random(7);
    const int B = 2;
    const auto x = random_vector(std::size_t(B) * g.pixels(), 11);
    LcaSolver<S, Sp, L> solver(g, converging(preset, lambda, 6000));
    solver.reset(B);
    const auto xin = to_images<S, Sp>(x, B, g.pixels());
    solver.solve(d, xin);
    solver.apply_drive(d); // Phi^T r at the final residual
    const auto grad = from_map(g, solver.drive()), a = from_map(g, solver.activities());
    int active = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i] != 0) {
        ++active;
        EXPECT_NEAR(grad[i], lambda * (a[i] > 0 ? 1 : -1), converged) << "active neuron " << i;
        if (preset == Preset::soft_nonneg)
          EXPECT_GT(a[i], 0);
      } else if (preset == Preset::soft) {
        EXPECT_LE(std::abs(grad[i]), lambda + converged) << "inactive neuron " << i;
      } else {
        EXPECT_LE(grad[i], lambda + converged) << "inactive neuron " << i;
      }
    }
    EXPECT_GT(active, 0);
    EXPECT_LT(active, int(a.size())); // a real sparse solution, not a degenerate one
  }
}

TYPED_TEST(LcaDynamics, EnergyNonIncreasingForSmallSteps) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g = small_conv();
  g.channels = 3, g.nf = 6;
  for (const Preset preset : {Preset::soft, Preset::soft_nonneg}) {
    SCOPED_TRACE(to_string(preset));
    LcaParams p = converging(preset, 0.1, 1);
    p.tau = 100; // dt/tau = 0.01
    Dictionary<S, Sp, L> d(g);
    d.init_random(9);
    const int B = 2;
    const auto xin =
        to_images<S, Sp>(random_vector(std::size_t(B) * g.pixels(), 13), B, g.pixels());
    LcaSolver<S, Sp, L> solver(g, p);
    solver.reset(B);
    std::vector<double> prev(B, std::numeric_limits<double>::infinity());
    // Relative rounding of an energy: a residual pixel sums its terms and x.
    const double slack = tol<S>(reconstruct_terms(g) + 1, 1.0);
    for (int it = 0; it < 300; ++it) {
      solver.compute_residual(d, xin);
      const auto st = solver.stats(xin);
      for (int b = 0; b < B; ++b) {
        const double e = st.energy(b, p.transfer);
        EXPECT_LE(e, prev[b] + slack * std::abs(e)) << "iteration " << it << " image " << b;
        prev[b] = e;
      }
      solver.step(d, xin, false);
    }
  }
}

TYPED_TEST(LcaDynamics, EarlyStopReportsIterations) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const Geometry g = small_conv();
  LcaParams p = converging(Preset::soft, 0.2, 100000);
  p.stop_tol = 1e-4;
  Dictionary<S, Sp, L> d(g);
  d.init_random(1);
  LcaSolver<S, Sp, L> solver(g, p);
  solver.reset(1);
  const int it =
      solver.solve(d, to_images<S, Sp>(random_vector(g.pixels(), 2), 1, g.pixels())).iterations;
  EXPECT_GT(it, 1);
  EXPECT_LT(it, p.iterations);
}

// OpenPV's AdaptiveTimeScaleController, worked by hand for one image.
TEST(AdaptiveTimeScale, FollowsOpenPV) {
  AdaptiveTimeScale p; // baseMin 0.06, baseMax 0.0615, tauFactor 0.03, growthFactor 0.025
  AdaptiveTimeScaleController c(p, 1);
  EXPECT_DOUBLE_EQ(c.time_scales()[0], 0.06);
  // First energy: the previous "true" value is -1 <= 0, so the scales reset to the base.
  EXPECT_DOUBLE_EQ(c.update({100.0})[0], 0.06);
  // E 100 -> 99 at scale 0.06: dE/dt = 1/0.06, tau_eff = 100 * 0.06 = 6, 0.03 * 6 = 0.18
  // exceeds the maximum 0.0615: capped there, and the maximum grows by 2.5 %.
  EXPECT_DOUBLE_EQ(c.update({99.0})[0], 0.0615);
  // E 99 -> 98.99 at 0.0615: tau_eff = 99 * 0.0615 / 0.01 = 608.85, 0.03 * that = 18.27,
  // capped at 0.0615 * 1.025.
  EXPECT_DOUBLE_EQ(c.update({98.99})[0], 0.0615 * 1.025);
  // A steep drop, E 98.99 -> 10 at scale s: tau_factor * E_0 * s / dE is below the cap.
  const double s = 0.0615 * 1.025, de = 98.99 - 10;
  EXPECT_DOUBLE_EQ(c.update({10.0})[0], 0.03 * 98.99 * s / de);
  // The same energy twice: nothing changes.
  const double before = c.time_scales()[0];
  EXPECT_DOUBLE_EQ(c.update({10.0})[0], before);
  // The energy rises: back to the base.
  EXPECT_DOUBLE_EQ(c.update({120.0})[0], 0.06);
}

// The adaptive time scale takes far bigger steps than dt 1 at tau 100, so it converges faster;
// it still reaches the same certified optimum.
TYPED_TEST(LcaDynamics, AdaptiveTimeScaleConverges) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob(Preset::soft_nonneg);
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  std::map<Timescale, int> needed;
  for (const Timescale ts : {Timescale::fixed, Timescale::adaptive}) {
    LcaParams p = converging(Preset::soft_nonneg, prob.lambda, 20000);
    p.tau = 100, p.timescale = ts, p.stop_gap = 1e-3, p.polish = false;
    LcaSolver<S, Sp, L> solver(prob.g, p);
    solver.reset(prob.B);
    const SolveInfo info = solver.solve(d, xin);
    EXPECT_EQ(info.unconverged, 0) << ts;
    needed[ts] = info.iterations;
  }
  EXPECT_LT(needed[Timescale::adaptive], needed[Timescale::fixed]);
}

} // namespace
} // namespace lca::test
