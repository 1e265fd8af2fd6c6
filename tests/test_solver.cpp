// LCA inference: transfer functions, LASSO optimality (KKT), agreement with coordinate
// descent on a dense problem, energy descent, parameter validation.
#include "backends.hpp"
#include "device_io.hpp"
#include "kernel_recorder.hpp"
#include "lca/error.hpp"
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <map>

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
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const bool is_float = std::is_same<S, float>::value;
  // How close 6000 steps get to the fixed point (convergence, not rounding).
  const double lambda = 0.2, converged = is_float ? 2e-4 : 1e-7;
  const Geometry g = small_conv();
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
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
        if (preset == "soft-nonneg")
          EXPECT_GT(a[i], 0);
      } else if (preset == "soft") {
        EXPECT_LE(std::abs(grad[i]), lambda + converged) << "inactive neuron " << i;
      } else {
        EXPECT_LE(grad[i], lambda + converged) << "inactive neuron " << i;
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
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 1, g.height = 4, g.width = 4, g.kernel = 4, g.stride = 4, g.nf = 8;
  // How close 5000 steps get (convergence, not rounding).
  const double lambda = 0.15, converged = std::is_same<S, float>::value ? 3e-4 : 1e-7;
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
    Dictionary<S, Sp, L> d(g);
    d.init_random(3);
    const auto w = d.to_host();
    const std::vector<double> D(w.begin(), w.end()); // exactly what the solver uses
    const int B = 3;
    const auto x = random_vector(std::size_t(B) * g.pixels(), 5);
    LcaSolver<S, Sp, L> solver(g, converging(preset, lambda, 5000));
    solver.reset(B);
    solver.solve(d, to_images<S, Sp>(x, B, g.pixels()));
    const auto a = from_map(g, solver.activities());
    for (int b = 0; b < B; ++b) {
      const std::vector<double> xb(x.begin() + b * g.pixels(), x.begin() + (b + 1) * g.pixels());
      const auto ref = lasso_cd(D, g.pixels(), g.nf, xb, lambda, preset == "soft-nonneg");
      for (int j = 0; j < g.nf; ++j)
        EXPECT_NEAR(a[b * g.nf + j], ref[j], converged) << "image " << b << " atom " << j;
    }
  }
}

TYPED_TEST(Solver, EnergyNonIncreasingForSmallSteps) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g = small_conv();
  g.channels = 3, g.nf = 6;
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
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

// Past kDenseDensity active neurons LCA forms Phi a by GEMM + col2im (cheaper there than the
// scatter over the active lists): the same codes as plain steps, which always scatter, to
// rounding; and the dense product did run.
TYPED_TEST(Solver, LcaTakesTheDenseProductWhenManyNeuronsAreActive) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g = small_conv();
  g.channels = 3, g.nf = 6;
  const LcaParams p = converging("soft", 0.02, 60);
  Dictionary<S, Sp, L> d(g);
  d.init_random(4);
  const int B = 2;
  const auto x = to_images<S, Sp>(random_vector(std::size_t(B) * g.pixels(), 17), B, g.pixels());
  LcaSolver<S, Sp, L> solver(g, p), plain(g, p);
  solver.reset(B), plain.reset(B);
  std::vector<KernelRecorder::Launch> log;
  {
    KernelRecorder recorder;
    solver.solve(d, x);
    log = recorder.launches();
  }
  for (int it = 0; it < p.iterations; ++it)
    plain.step(d, x, false);
  const double active = double(solver.active_count());
  const double dense_above = LcaSolver<S, Sp, L>::kDenseDensity * B * g.neurons();
  ASSERT_GT(active, dense_above)
      << "too few active neurons: the test would not reach the dense product";
  EXPECT_EQ(active, double(plain.active_count()));
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const KernelRecorder::Launch& l) {
    return l.label == "lca::LcaSolver::col2im";
  })) << "the dense product never ran";
  const auto a = from_map(g, solver.activities()), b = from_map(g, plain.activities());
  // Each step's product differs by the rounding of a sum over the residual's terms; the
  // steps carry it on.
  const double per_step = tol<S>(reconstruct_terms(g) + g.patch(), 1 + max_abs(b));
  EXPECT_LE(max_abs_diff(a, b), p.iterations * per_step);
}

TYPED_TEST(Solver, EarlyStopReportsIterations) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const Geometry g = small_conv();
  LcaParams p = converging("soft", 0.2, 100000);
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

// ---- Certified convergence (algorithm.md §9) -------------------------------------------

/// The convolutional operator as an explicit dense matrix, column j = Phi e_j over one
/// image's neurons in map order (nf, H/s, W/s), stored as lasso_cd takes it: D[j * n + i].
std::vector<double> dense_operator(const Geometry& g, const std::vector<double>& dict) {
  const int n = g.pixels(), m = int(g.neurons());
  std::vector<double> D(std::size_t(m) * n), e(m, 0.0);
  for (int j = 0; j < m; ++j) {
    e[j] = 1;
    const auto col = ref_reconstruct(g, dict, e, 1);
    std::copy(col.begin(), col.end(), D.begin() + std::size_t(j) * n);
    e[j] = 0;
  }
  return D;
}

double lasso_energy(const std::vector<double>& D, int n, const std::vector<double>& x,
                    const std::vector<double>& a, double lambda) {
  std::vector<double> r(x);
  double l1 = 0;
  for (std::size_t j = 0; j < a.size(); ++j) {
    l1 += std::abs(a[j]);
    for (int i = 0; i < n; ++i)
      r[i] -= D[j * n + i] * a[j];
  }
  double rr = 0;
  for (double v : r)
    rr += v * v;
  return 0.5 * rr + lambda * l1;
}

/// A small convolutional LASSO with its double-precision coordinate-descent optimum P*.
struct SmallLasso {
  Geometry g;
  double lambda = 0.15;
  int B = 3;
  std::vector<double> dict, x, optimum; ///< optimum: P* per image
  SmallLasso(const std::string& preset) {
    g.channels = 2, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
    Dictionary<double> d(g); // the default space: instantiated on every build
    d.init_random(21);
    const auto w = d.to_host();
    dict.assign(w.begin(), w.end());
    x = random_vector(std::size_t(B) * g.pixels(), 22);
    const auto D = dense_operator(g, dict);
    for (int b = 0; b < B; ++b) {
      const std::vector<double> xb(x.begin() + b * g.pixels(), x.begin() + (b + 1) * g.pixels());
      const auto a = lasso_cd(D, g.pixels(), int(g.neurons()), xb, lambda, preset == "soft-nonneg");
      optimum.push_back(lasso_energy(D, g.pixels(), xb, a, lambda));
    }
  }
  /// The problem on a backend: its dictionary, exactly, and its images.
  template <class S, class Sp, class L> Dictionary<S, Sp, L> dictionary() const {
    Dictionary<S, Sp, L> d(g);
    load_dictionary_exact(d, dict);
    return d;
  }
  template <class S, class Sp> typename Views<S, Sp>::Images images() const {
    return to_images<S, Sp>(x, B, g.pixels());
  }
};

// The certificate brackets the optimum at every stage of every solver: D <= P* <= P, the
// gap is >= 0 and bounds the true distance, and it shrinks to rounding once converged.
TYPED_TEST(Solver, CertificateBracketsTheOptimum) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const bool is_float = std::is_same<S, float>::value;
  for (const std::string preset : {"soft", "soft-nonneg"})
    for (const std::string kind : {"lca", "fista"}) {
      SCOPED_TRACE(preset + " " + kind);
      const SmallLasso prob(preset);
      const auto d = prob.dictionary<S, Sp, L>();
      const auto xin = prob.images<S, Sp>();
      // Relative rounding of P and D, which sum the residual's pixels (each its terms and x).
      const double slack = tol<S>(reconstruct_terms(prob.g) + 1, 1.0);
      double last_gap = 1;
      for (const int iterations : {1, 5, 30, 3000}) {
        LcaParams p = converging(preset, prob.lambda, iterations);
        p.solver = kind;
        LcaSolver<S, Sp, L> solver(prob.g, p);
        solver.reset(prob.B);
        const SolveInfo info = solver.solve(d, xin);
        ASSERT_EQ(info.certificates.size(), std::size_t(prob.B));
        EXPECT_EQ(info.iterations, iterations);
        const auto again = solver.certificate(xin); // the public call agrees with solve's
        double worst = 0;
        for (int b = 0; b < prob.B; ++b) {
          const Certificate& c = info.certificates[b];
          const double pstar = prob.optimum[b];
          EXPECT_LE(c.dual, pstar * (1 + slack)) << "image " << b << " at " << iterations;
          EXPECT_GE(c.primal, pstar * (1 - slack)) << "image " << b << " at " << iterations;
          EXPECT_GE(c.gap, 0.0);
          EXPECT_LE((c.primal - pstar) / c.primal, c.gap + slack) << "the gap must bound";
          EXPECT_NEAR(again[b].gap, c.gap, 1e-12 + slack);
          worst = std::max(worst, c.gap);
        }
        last_gap = worst;
      }
      EXPECT_LT(last_gap, is_float ? 1e-4 : 1e-9) << "converged problems certify to rounding";
    }
}

// FISTA finds the same optimum as coordinate descent, and does it far faster than LCA.
TYPED_TEST(Solver, FistaReachesTheOptimumFasterThanLca) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const double gap = std::is_same<S, float>::value ? 1e-5 : 1e-9;
  const SmallLasso prob("soft-nonneg");
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  std::map<std::string, int> needed;
  for (const std::string kind : {"lca", "fista"}) {
    LcaParams p = converging("soft-nonneg", prob.lambda, 20000);
    p.solver = kind, p.stop_gap = gap, p.polish = false, p.check_every = 1;
    LcaSolver<S, Sp, L> solver(prob.g, p);
    solver.reset(prob.B);
    const SolveInfo info = solver.solve(d, xin);
    EXPECT_EQ(info.unconverged, 0) << kind;
    EXPECT_EQ(info.polishes, 0) << kind;
    for (int b = 0; b < prob.B; ++b) {
      EXPECT_LE(info.certificates[b].gap, gap) << kind;
      EXPECT_NEAR(info.certificates[b].primal, prob.optimum[b], 2 * gap * prob.optimum[b]);
    }
    needed[kind] = info.iterations;
  }
  EXPECT_LT(needed["fista"] * 3, needed["lca"])
      << "fista " << needed["fista"] << ", lca " << needed["lca"];
}

// --stop-gap: the batch stops once every image is certified; a cap that comes first is
// reported image by image, never hidden.
TYPED_TEST(Solver, StopGapStopsAndCountsImagesAtTheCap) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob("soft");
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  LcaParams p = converging("soft", prob.lambda, 5000);
  p.stop_gap = 1e-3;
  LcaSolver<S, Sp, L> solver(prob.g, p);
  solver.reset(prob.B);
  SolveInfo info = solver.solve(d, xin);
  EXPECT_LT(info.iterations, p.iterations);
  EXPECT_EQ(info.iterations % p.check_every, 0);
  EXPECT_EQ(info.unconverged, 0);
  for (const auto& c : info.certificates)
    EXPECT_LE(c.gap, p.stop_gap);

  p.iterations = 3, p.polish = false; // far too few
  LcaSolver<S, Sp, L> capped(prob.g, p);
  capped.reset(prob.B);
  info = capped.solve(d, xin);
  EXPECT_EQ(info.iterations, 3);
  int above = 0;
  for (const auto& c : info.certificates)
    above += c.gap > p.stop_gap;
  EXPECT_GT(above, 0);
  EXPECT_EQ(info.unconverged, above);
}

// Polishing on a stable support makes the code exact: with it, LCA certifies a tight gap in
// far fewer iterations than without, and the code is the optimum.
TYPED_TEST(Solver, PolishingMakesTheCertificateExact) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const bool is_float = std::is_same<S, float>::value;
  const double eps = is_float ? 1e-5 : 1e-10;
  for (const std::string preset : {"soft", "soft-nonneg"}) {
    SCOPED_TRACE(preset);
    const SmallLasso prob(preset);
    const auto d = prob.dictionary<S, Sp, L>();
    const auto xin = prob.images<S, Sp>();
    std::map<bool, SolveInfo> runs;
    for (const bool polish : {true, false}) {
      LcaParams p = converging(preset, prob.lambda, 20000);
      p.stop_gap = eps, p.polish = polish;
      LcaSolver<S, Sp, L> solver(prob.g, p);
      solver.reset(prob.B);
      runs[polish] = solver.solve(d, xin);
      EXPECT_EQ(runs[polish].unconverged, 0) << "polish " << polish;
      for (int b = 0; b < prob.B; ++b)
        EXPECT_NEAR(runs[polish].certificates[b].primal, prob.optimum[b],
                    2 * eps * prob.optimum[b]);
    }
    EXPECT_GT(runs[true].polishes, 0);
    EXPECT_GT(runs[true].polish_iterations, 0);
    EXPECT_LT(2 * (runs[true].iterations + runs[true].polish_iterations), runs[false].iterations);
  }
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
TYPED_TEST(Solver, AdaptiveTimeScaleConverges) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob("soft-nonneg");
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  std::map<std::string, int> needed;
  for (const std::string ts : {"fixed", "adaptive"}) {
    LcaParams p = converging("soft-nonneg", prob.lambda, 20000);
    p.tau = 100, p.timescale = ts, p.stop_gap = 1e-3, p.polish = false;
    LcaSolver<S, Sp, L> solver(prob.g, p);
    solver.reset(prob.B);
    const SolveInfo info = solver.solve(d, xin);
    EXPECT_EQ(info.unconverged, 0) << ts;
    needed[ts] = info.iterations;
  }
  EXPECT_LT(needed["adaptive"], needed["fixed"]);
}

TEST(Params, SolverSettingsAreValidated) {
  const auto expect_message = [](LcaParams p, const std::string& part) {
    try {
      validate(p);
      ADD_FAILURE() << "accepted, expected: " << part;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  LcaParams p;
  p.transfer = make_transfer("hard", 0.1);
  p.solver = "fista";
  expect_message(p, "soft-nonneg, soft");
  p.solver = "lca", p.stop_gap = 1e-3;
  expect_message(p, "no duality-gap certificate");
  p.transfer = make_transfer("soft", 0.1);
  p.stop_gap = -1;
  expect_message(p, "stop gap");
  p.stop_gap = std::nan("");
  expect_message(p, "stop gap");
  p.stop_gap = 1; // a relative gap of 1 or more certifies nothing
  expect_message(p, "stop gap must be in [0, 1)");
  p.stop_gap = 0, p.solver = "newton";
  expect_message(p, "unknown solver");
  p.solver = "lca", p.timescale = "sometimes";
  expect_message(p, "unknown time scale");
  p.timescale = "adaptive", p.adaptive.base_min = 0;
  expect_message(p, "baseMin");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.base_max = 0.01;
  expect_message(p, "baseMax");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.tau_factor = -1;
  expect_message(p, "tauFactor");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.growth_factor = std::nan("");
  expect_message(p, "growthFactor");
  p.adaptive = AdaptiveTimeScale{}, p.solver = "fista";
  expect_message(p, "LCA option");
  EXPECT_TRUE(is_lasso(make_transfer("soft-nonneg", 0.3)));
  EXPECT_FALSE(is_lasso(make_transfer("hard-nonneg", 0.3)));
}

} // namespace
} // namespace lca::test
