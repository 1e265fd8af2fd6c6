// The solver as a whole: parameter validation and the LASSO optimum of coordinate descent
// on a dense problem; warm starts.
#include "backends.hpp"
#include "device_io.hpp"
#include "kernels/cd.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace lca::test {
namespace {

template <class T> struct Solver : ::testing::Test {};
TYPED_TEST_SUITE(Solver, Configs, ConfigNames);

TEST(Params, InvalidValuesThrowWithClearMessages) {
  EXPECT_THROW(make_transfer(Preset::custom, 0.1), InvalidArgument);
  EXPECT_THROW(make_transfer(Preset::soft, -0.1), InvalidArgument);
  EXPECT_THROW(make_transfer(Preset::soft, std::nan("")), InvalidArgument);
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

TYPED_TEST(Solver, MatchesCoordinateDescentOnDenseProblem) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 1, g.height = 4, g.width = 4, g.kernel = 4, g.stride = 4, g.nf = 8;
  // How close 5000 steps get (convergence, not rounding).
  const double lambda = 0.15, converged = std::is_same<S, float>::value ? 3e-4 : 1e-7;
  for (const Preset preset : {Preset::soft, Preset::soft_nonneg}) {
    SCOPED_TRACE(to_string(preset));
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
      const auto ref = lasso_cd(D, g.pixels(), g.nf, xb, lambda, preset == Preset::soft_nonneg);
      for (int j = 0; j < g.nf; ++j)
        EXPECT_NEAR(a[b * g.nf + j], ref[j], converged) << "image " << b << " atom " << j;
    }
  }
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
  p.transfer = make_transfer(Preset::hard, 0.1);
  p.solver = lca::Solver::fista;
  expect_message(p, "soft-nonneg, soft");
  p.solver = lca::Solver::lca, p.stop_gap = 1e-3;
  expect_message(p, "no duality-gap certificate");
  p.transfer = make_transfer(Preset::soft, 0.1);
  p.stop_gap = -1;
  expect_message(p, "stop gap");
  p.stop_gap = std::nan("");
  expect_message(p, "stop gap");
  p.stop_gap = 1; // a relative gap of 1 or more certifies nothing
  expect_message(p, "stop gap must be in [0, 1)");
  p.stop_gap = 0, p.timescale = Timescale::adaptive, p.adaptive.base_min = 0;
  expect_message(p, "baseMin");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.base_max = 0.01;
  expect_message(p, "baseMax");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.tau_factor = -1;
  expect_message(p, "tauFactor");
  p.adaptive = AdaptiveTimeScale{}, p.adaptive.growth_factor = std::nan("");
  expect_message(p, "growthFactor");
  p.adaptive = AdaptiveTimeScale{}, p.solver = lca::Solver::fista;
  expect_message(p, "LCA option");
  EXPECT_TRUE(is_lasso(make_transfer(Preset::soft_nonneg, 0.3)));
  EXPECT_FALSE(is_lasso(make_transfer(Preset::hard_nonneg, 0.3)));
}

// --solver auto: lca without a LASSO energy or with the adaptive time scale; fista with the
// support solve on a GPU or where cd's overlap table passes its limit; else cd without the
// support solve. A named solver is kept as given, and the solver runs what auto resolves to.
TEST(Params, AutoSolverResolvesByBackendAndShape) {
  Geometry w128;
  w128.channels = 3, w128.height = 32, w128.width = 32, w128.kernel = 8, w128.stride = 2;
  w128.nf = 128;
  Geometry huge = w128;
  huge.nf = 1024; // 23 x 23 slots of 1024 x 1024 floats: 2.2 GB
  LcaParams p;
  p.solver = lca::Solver::automatic, p.transfer = make_transfer(Preset::soft_nonneg, 0.5);
  p.stop_gap = 1e-3, p.polish = true;
  EXPECT_NO_THROW(validate(p));
  p.polish = false; // auto chooses the support solve itself
  LcaParams r = resolve_solver(p, false, cd_table_bytes(w128, sizeof(float)));
  EXPECT_EQ(r.solver, lca::Solver::cd);
  EXPECT_TRUE(r.polish);
  EXPECT_EQ(r.stop_gap, p.stop_gap);
  r = resolve_solver(p, true, cd_table_bytes(w128, sizeof(float)));
  EXPECT_EQ(r.solver, lca::Solver::fista);
  EXPECT_TRUE(r.polish);
  p.polish = false;
  r = resolve_solver(p, false, cd_table_bytes(huge, sizeof(float)));
  EXPECT_EQ(r.solver, lca::Solver::fista);
  EXPECT_TRUE(r.polish);
  EXPECT_GT(cd_table_bytes(huge, sizeof(float)), double(1u << 30));
  EXPECT_LT(cd_table_bytes(w128, sizeof(float)), double(1u << 30));
  p.timescale = Timescale::adaptive, p.stop_gap = 0;
  EXPECT_NO_THROW(validate(p));
  EXPECT_EQ(resolve_solver(p, false, cd_table_bytes(w128, sizeof(float))).solver, lca::Solver::lca);
  p.timescale = Timescale::fixed, p.transfer = make_transfer(Preset::hard, 0.1);
  EXPECT_NO_THROW(validate(p));
  EXPECT_EQ(resolve_solver(p, false, cd_table_bytes(w128, sizeof(float))).solver, lca::Solver::lca);
  p.stop_gap = 1e-3; // a hard threshold has no certificate, whatever the solver
  EXPECT_THROW(validate(p), InvalidArgument);
  for (const auto s : {lca::Solver::lca, lca::Solver::fista, lca::Solver::cd}) {
    LcaParams q;
    q.solver = s, q.transfer = make_transfer(Preset::soft, 0.5), q.polish = true;
    const LcaParams kept = resolve_solver(q, false, cd_table_bytes(w128, sizeof(float)));
    EXPECT_EQ(kept.solver, s);
    EXPECT_TRUE(kept.polish);
  }
  // The solver on the default backend runs what auto resolves to there.
  LcaParams a;
  a.solver = lca::Solver::automatic, a.transfer = make_transfer(Preset::soft, 0.5);
  a.stop_gap = 1e-3;
  const LcaSolver<float> s(w128, a);
  constexpr bool host =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, DefaultDevice::memory_space>::accessible;
  EXPECT_EQ(s.params().solver, host ? lca::Solver::cd : lca::Solver::fista);
  EXPECT_TRUE(s.params().polish);
}

// Flags, configs and checkpoints name the modes by text: every name reads back as its value,
// anything else is refused with the message the apps print.
TEST(Params, ModeNamesRoundTrip) {
  for (const auto& n : kSolverNames)
    EXPECT_EQ(parse_solver(n.name), n.value);
  for (const auto& n : kTimescaleNames)
    EXPECT_EQ(parse_timescale(n.name), n.value);
  for (const auto& n : kPresetNames)
    EXPECT_EQ(parse_preset(n.name), n.value);
  EXPECT_STREQ(to_string(lca::Solver::fista), "fista");
  EXPECT_STREQ(to_string(Timescale::adaptive), "adaptive");
  EXPECT_STREQ(to_string(Preset::soft_nonneg), "soft-nonneg");
  EXPECT_STREQ(to_string(Preset::custom), "custom");
  const auto expect_message = [](const auto& parse, const std::string& message) {
    try {
      parse();
      ADD_FAILURE() << "accepted, expected: " << message;
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.what(), message);
    }
  };
  expect_message([] { parse_solver("newton"); }, "unknown solver 'newton' (lca, fista, cd, auto)");
  expect_message([] { parse_timescale("sometimes"); },
                 "unknown time scale 'sometimes' (fixed, adaptive)");
  expect_message([] { parse_preset("bogus"); },
                 "unknown threshold preset 'bogus' (soft-nonneg, hard-nonneg, soft, hard)");
  expect_message([] { parse_solver("FISTA"); }, "unknown solver 'FISTA' (lca, fista, cd, auto)");
}

// Warm starts: codes() and warm_start() round-trip exactly; a solve started from an optimal code
// certifies it at the first check (no iteration), for LCA (its potentials are put on the
// threshold line), FISTA and coordinate descent; a null start is a cold one.
TYPED_TEST(Solver, WarmStartFromTheOptimumCertifiesAtOnce) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const double tight = std::is_same<S, float>::value ? 1e-5 : 1e-9;
  for (const Preset preset : {Preset::soft, Preset::soft_nonneg}) {
    const SmallLasso prob(preset);
    const auto d = prob.dictionary<S, Sp, L>();
    const auto x = prob.images<S, Sp>();
    for (const lca::Solver kind : {lca::Solver::lca, lca::Solver::fista, lca::Solver::cd}) {
      SCOPED_TRACE(std::string(to_string(preset)) + " " + to_string(kind));
      LcaParams p = converging(preset, prob.lambda, 20000);
      p.solver = kind, p.stop_gap = tight;
      LcaSolver<S, Sp, L> cold(prob.g, p);
      cold.reset(prob.B);
      const SolveInfo first = cold.solve(d, x);
      ASSERT_EQ(first.unconverged, 0);
      const std::vector<SparseCode> codes = cold.codes();
      std::vector<const SparseCode*> start;
      for (const SparseCode& c : codes) {
        EXPECT_FALSE(c.index.empty());
        EXPECT_TRUE(std::is_sorted(c.index.begin(), c.index.end()));
        start.push_back(&c);
      }
      p.stop_gap = 1e-3;
      LcaSolver<S, Sp, L> warm(prob.g, p);
      warm.reset(prob.B);
      warm.warm_start(start);
      const std::vector<SparseCode> again = warm.codes();
      for (int b = 0; b < prob.B; ++b) {
        EXPECT_EQ(again[b].index, codes[b].index);
        EXPECT_EQ(again[b].value, codes[b].value);
      }
      const SolveInfo info = warm.solve(d, x);
      EXPECT_EQ(info.iterations, 0);
      EXPECT_EQ(info.unconverged, 0);
      for (int b = 0; b < prob.B; ++b)
        EXPECT_NEAR(info.certificates[b].primal, first.certificates[b].primal,
                    4 * tight * first.certificates[b].primal);
      // A null start is zero; the next reset forgets the warm start.
      start[1] = nullptr;
      warm.reset(prob.B);
      warm.warm_start(start);
      EXPECT_TRUE(warm.codes()[1].index.empty());
      warm.reset(prob.B);
      EXPECT_TRUE(warm.codes()[0].index.empty());
    }
  }
}

TEST(Solver, WarmStartRefusesBadCodes) {
  const Geometry g = small_conv();
  LcaParams p = converging(Preset::soft, 0.1, 10);
  LcaSolver<double> s(g, p);
  s.reset(2);
  SparseCode bad;
  bad.index = {int(g.neurons())}, bad.value = {1.0f};
  EXPECT_THROW(s.warm_start({&bad, nullptr}), InvalidArgument);
  bad.index = {0, 1};
  EXPECT_THROW(s.warm_start({&bad, nullptr}), InvalidArgument); // 2 indices, 1 value
  EXPECT_THROW(s.warm_start({nullptr}), InvalidArgument);       // 1 code for 2 images
  LcaSolver<double> hard(g, converging(Preset::hard, 0.1, 10));
  hard.reset(1);
  EXPECT_THROW(hard.warm_start({nullptr}), InvalidArgument);
}

} // namespace
} // namespace lca::test
