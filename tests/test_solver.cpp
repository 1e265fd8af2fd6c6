// LCA inference: transfer functions, LASSO optimality (KKT), agreement with coordinate
// descent on a dense problem, energy descent, parameter validation.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"

#include <cmath>

namespace lca::test {
namespace {

TEST(Transfer, PresetsOnTabulatedInputs) {
  struct Row {
    const char* preset;
    double v, a;
  };
  const Row rows[] = {
      {"soft-nonneg", -1.0, 0.0}, {"soft-nonneg", 0.4, 0.0},  {"soft-nonneg", 0.5, 0.0},
      {"soft-nonneg", 0.7, 0.2},  {"soft-nonneg", 2.0, 1.5},  {"hard-nonneg", 0.4, 0.0},
      {"hard-nonneg", 0.7, 0.7},  {"hard-nonneg", -0.7, 0.0}, {"soft", -0.7, -0.2},
      {"soft", 0.3, 0.0},         {"soft", -0.3, 0.0},        {"soft", 1.5, 1.0},
      {"hard", -0.7, -0.7},       {"hard", 0.49, 0.0},        {"hard", -0.49, 0.0}};
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

TEST(Params, InvalidValuesThrowWithClearMessages) {
  EXPECT_THROW(make_transfer("bogus", 0.1), InvalidArgument);
  EXPECT_THROW(make_transfer("soft", -0.1), InvalidArgument);
  EXPECT_THROW(make_transfer("soft", std::nan("")), InvalidArgument);
  LcaParams p;
  p.iterations = 0;
  try {
    validate(p);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "iterations must be >= 1 (got 0)");
  }
  p.iterations = 1, p.tau = 0;
  EXPECT_THROW(validate(p), InvalidArgument);
  p.tau = 1, p.dt = -1;
  EXPECT_THROW(validate(p), InvalidArgument);
  LearnParams l;
  l.eta = -1;
  EXPECT_THROW(validate(l), InvalidArgument);
  Geometry g;
  EXPECT_THROW((LcaSolver<float>(g, p)), InvalidArgument);
  p.dt = 1;
  LcaSolver<float> s(g, p);
  EXPECT_THROW(s.reset(0), InvalidArgument);
  s.reset(2);
  Dictionary<float> d(g);
  Views<float>::Images wrong("wrong", 3, g.pixels());
  EXPECT_THROW(s.solve(d, wrong), InvalidArgument);
}

template <class T> struct Solver : ::testing::Test {};
TYPED_TEST_SUITE(Solver, Configs, ConfigNames);

Geometry small_conv() {
  Geometry g;
  g.channels = 1, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 3;
  return g;
}

LcaParams converging(const std::string& preset, double lambda, int iterations) {
  LcaParams p;
  p.tau = 10, p.dt = 1, p.iterations = iterations;
  p.transfer = make_transfer(preset, lambda);
  return p;
}

// At a fixed point of soft LCA the LASSO KKT conditions hold exactly (algorithm.md §3).
TYPED_TEST(Solver, ConvergesToLassoKkt) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Space;
  const bool is_float = std::is_same<S, float>::value;
  const double lambda = 0.2, tol = is_float ? 2e-4 : 1e-7;
  const Geometry g = small_conv();
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
    Dictionary<S, Sp> d(g);
    d.init_random(7);
    const int B = 2;
    const auto x = random_vector(std::size_t(B) * g.pixels(), 11);
    LcaSolver<S, Sp> solver(g, converging(preset, lambda, 6000));
    solver.reset(B);
    const auto xin = to_images<S, Sp>(x, B, g.pixels());
    solver.solve(d, xin);
    solver.apply_drive(d); // Phi^T r at the final residual
    const auto grad = from_map(g, solver.drive()), a = from_map(g, solver.activities());
    int active = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i] != 0) {
        ++active;
        EXPECT_NEAR(grad[i], lambda * (a[i] > 0 ? 1 : -1), tol) << "active neuron " << i;
        if (preset == "soft-nonneg")
          EXPECT_GT(a[i], 0);
      } else if (preset == "soft") {
        EXPECT_LE(std::abs(grad[i]), lambda + tol) << "inactive neuron " << i;
      } else {
        EXPECT_LE(grad[i], lambda + tol) << "inactive neuron " << i;
      }
    }
    EXPECT_GT(active, 0);
    EXPECT_LT(active, int(a.size())); // a real sparse solution, not a degenerate one
  }
}

// Coordinate-descent LASSO on a dense dictionary (k = H = W, s = H): the same optimum.
std::vector<double> lasso_cd(const std::vector<double>& D, int n, int m,
                             const std::vector<double>& x, double lambda, bool nonneg) {
  std::vector<double> a(m, 0.0), r(x);
  for (int sweep = 0; sweep < 100000; ++sweep) {
    double change = 0;
    for (int j = 0; j < m; ++j) {
      double dj2 = 0, c = 0;
      for (int i = 0; i < n; ++i) {
        dj2 += D[j * n + i] * D[j * n + i];
        c += D[j * n + i] * (r[i] + D[j * n + i] * a[j]);
      }
      double aj = std::abs(c) > lambda ? (c - lambda * (c > 0 ? 1 : -1)) / dj2 : 0.0;
      if (nonneg && aj < 0)
        aj = 0;
      for (int i = 0; i < n; ++i)
        r[i] -= D[j * n + i] * (aj - a[j]);
      change = std::max(change, std::abs(aj - a[j]));
      a[j] = aj;
    }
    if (change < 1e-15)
      break;
  }
  return a;
}

TYPED_TEST(Solver, MatchesCoordinateDescentOnDenseProblem) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Space;
  Geometry g;
  g.channels = 1, g.height = 4, g.width = 4, g.kernel = 4, g.stride = 4, g.nf = 8;
  const double lambda = 0.15, tol = std::is_same<S, float>::value ? 3e-4 : 1e-7;
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
    Dictionary<S, Sp> d(g);
    d.init_random(3);
    const auto w = d.to_host();
    const std::vector<double> D(w.begin(), w.end()); // exactly what the solver uses
    const int B = 3;
    const auto x = random_vector(std::size_t(B) * g.pixels(), 5);
    LcaSolver<S, Sp> solver(g, converging(preset, lambda, 5000));
    solver.reset(B);
    solver.solve(d, to_images<S, Sp>(x, B, g.pixels()));
    const auto a = from_map(g, solver.activities());
    for (int b = 0; b < B; ++b) {
      const std::vector<double> xb(x.begin() + b * g.pixels(), x.begin() + (b + 1) * g.pixels());
      const auto ref = lasso_cd(D, g.pixels(), g.nf, xb, lambda, preset == "soft-nonneg");
      for (int j = 0; j < g.nf; ++j)
        EXPECT_NEAR(a[b * g.nf + j], ref[j], tol) << "image " << b << " atom " << j;
    }
  }
}

TYPED_TEST(Solver, EnergyNonIncreasingForSmallSteps) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Space;
  Geometry g = small_conv();
  g.channels = 3, g.nf = 6;
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
    LcaParams p = converging(preset, 0.1, 1);
    p.tau = 100; // dt/tau = 0.01
    Dictionary<S, Sp> d(g);
    d.init_random(9);
    const int B = 2;
    const auto xin =
        to_images<S, Sp>(random_vector(std::size_t(B) * g.pixels(), 13), B, g.pixels());
    LcaSolver<S, Sp> solver(g, p);
    solver.reset(B);
    std::vector<double> prev(B, std::numeric_limits<double>::infinity());
    const double slack = std::is_same<S, float>::value ? 1e-5 : 1e-12;
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

TYPED_TEST(Solver, EarlyStopReportsIterations) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Space;
  const Geometry g = small_conv();
  LcaParams p = converging("soft", 0.2, 100000);
  p.stop_tol = 1e-4;
  Dictionary<S, Sp> d(g);
  d.init_random(1);
  LcaSolver<S, Sp> solver(g, p);
  solver.reset(1);
  const int it = solver.solve(d, to_images<S, Sp>(random_vector(g.pixels(), 2), 1, g.pixels()));
  EXPECT_GT(it, 1);
  EXPECT_LT(it, p.iterations);
}

} // namespace
} // namespace lca::test
