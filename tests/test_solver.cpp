// The solver as a whole: parameter validation and the LASSO optimum of coordinate descent
// on a dense problem.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <cmath>
#include <limits>

namespace lca::test {
namespace {

template <class T> struct Solver : ::testing::Test {};
TYPED_TEST_SUITE(Solver, Configs, ConfigNames);

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
