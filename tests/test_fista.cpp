// FISTA (algorithm.md §9): the optimum, faster than LCA; the Lipschitz estimate of the
// operator.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace lca::test {
namespace {

template <class T> struct Fista : ::testing::Test {};
TYPED_TEST_SUITE(Fista, Configs, ConfigNames);

// FISTA finds the same optimum as coordinate descent, and does it far faster than LCA.
TYPED_TEST(Fista, FistaReachesTheOptimumFasterThanLca) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const double gap = std::is_same<S, float>::value ? 1e-5 : 1e-9;
  const SmallLasso prob(Preset::soft_nonneg);
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  std::map<Solver, int> needed;
  for (const Solver kind : {Solver::lca, Solver::fista}) {
    LcaParams p = converging(Preset::soft_nonneg, prob.lambda, 20000);
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
  EXPECT_LT(needed[Solver::fista] * 3, needed[Solver::lca])
      << "fista " << needed[Solver::fista] << ", lca " << needed[Solver::lca];
}

// An image certified at a check keeps its code to the end of the batch's solve, bit for bit,
// while the others go on (with and without the support solve): FISTA's float steps would
// otherwise move it by rounding, and below ~1e-6 out of its certificate again.
TYPED_TEST(Fista, CertifiedImagesKeepTheirCodes) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const double gap = std::is_same<S, float>::value ? 1e-5 : 1e-9;
  for (const bool polish : {false, true}) {
    SCOPED_TRACE(polish ? "support solve" : "without it");
    const ClippedLasso prob(false);
    const auto& g = prob.g;
    const auto d = prob.dictionary<S, Sp, L>();
    const auto x = prob.images<S, Sp>();
    LcaParams p = converging(Preset::soft, prob.lambda, 20000);
    p.solver = Solver::fista, p.stop_gap = gap, p.polish = polish, p.check_every = 1;
    LcaSolver<S, Sp, L> solver(g, p);
    // Each image's code at the first check that certified it, and that check.
    std::vector<std::vector<double>> at_certificate(prob.B);
    std::vector<int> when(prob.B, -1);
    solver.set_trace([&](int it, int rounds, const std::vector<Certificate>& c) {
      const auto codes = from_map(g, solver.activities());
      const std::size_t n = std::size_t(g.neurons());
      for (int b = 0; b < prob.B; ++b)
        if (when[b] < 0 && c[b].gap <= gap) {
          when[b] = it + rounds;
          at_certificate[b].assign(codes.begin() + b * n, codes.begin() + (b + 1) * n);
        }
    });
    solver.reset(prob.B);
    const SolveInfo info = solver.solve(d, x);
    EXPECT_EQ(info.unconverged, 0);
    const auto codes = from_map(g, solver.activities());
    const std::size_t n = std::size_t(g.neurons());
    for (int b = 0; b < prob.B; ++b) {
      SCOPED_TRACE("image " + std::to_string(b));
      ASSERT_GE(when[b], 0);
      EXPECT_EQ(std::vector<double>(codes.begin() + b * n, codes.begin() + (b + 1) * n),
                at_certificate[b]);
    }
    // The images certified at different checks (else the test shows nothing).
    EXPECT_LT(*std::min_element(when.begin(), when.end()),
              *std::max_element(when.begin(), when.end()));
  }
}

// The Lipschitz estimate is ||Phi^T Phi|| (double power iteration on the explicit operator)
// from below within the power iteration's reach, times its 2 % margin; a function of the
// dictionary alone: any batch size, before or after a solve.
TYPED_TEST(Fista, LipschitzEstimateBoundsTheOperator) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob(Preset::soft);
  const auto d = prob.dictionary<S, Sp, L>();
  const int n = prob.g.pixels(), m = int(prob.g.neurons());
  const auto D = dense_operator(prob.g, prob.dict);
  std::vector<double> v = random_vector(std::size_t(m), 3), w(n);
  double norm = 0;
  for (int it = 0; it < 2000; ++it) { // v <- Phi^T Phi v / |.|
    std::fill(w.begin(), w.end(), 0.0);
    for (int j = 0; j < m; ++j)
      for (int i = 0; i < n; ++i)
        w[i] += D[std::size_t(j) * n + i] * v[j];
    double vv = 0;
    for (int j = 0; j < m; ++j) {
      v[j] = 0;
      for (int i = 0; i < n; ++i)
        v[j] += D[std::size_t(j) * n + i] * w[i];
      vv += v[j] * v[j];
    }
    norm = std::sqrt(vv);
    for (double& x : v)
      x /= norm;
  }
  LcaParams p = converging(Preset::soft, prob.lambda, 50);
  p.solver = Solver::fista;
  LcaSolver<S, Sp, L> one(prob.g, p), three(prob.g, p);
  one.reset(1), three.reset(prob.B);
  const double estimate = one.estimate_lipschitz(d, LcaSolver<S, Sp, L>::kPowerIterations);
  const double slack = tol<S>(double(n) * prob.g.nf, 1.0);
  EXPECT_LE(estimate, 1.02 * norm * (1 + slack));
  EXPECT_GE(estimate, 0.95 * norm);
  three.solve(d, prob.images<S, Sp>());
  EXPECT_EQ(three.estimate_lipschitz(d, LcaSolver<S, Sp, L>::kPowerIterations), estimate);
}

} // namespace
} // namespace lca::test
