// The duality-gap certificate (algorithm.md §9): it brackets the optimum at every stage, and
// --stop-gap stops on it; the statistics agree with plain sums.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <cmath>

namespace lca::test {
namespace {

template <class T> struct Certify : ::testing::Test {};
TYPED_TEST_SUITE(Certify, Configs, ConfigNames);

// The certificate brackets the optimum at every stage of every solver: D <= P* <= P, the
// gap is >= 0 and bounds the true distance, and it shrinks to rounding once converged.
TYPED_TEST(Certify, CertificateBracketsTheOptimum) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const bool is_float = std::is_same<S, float>::value;
  for (const Preset preset : {Preset::soft, Preset::soft_nonneg})
    for (const Solver kind : {Solver::lca, Solver::fista}) {
      SCOPED_TRACE(std::string(to_string(preset)) + " " + to_string(kind));
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

// --stop-gap: the batch stops once every image is certified; a cap that comes first is
// reported image by image, never hidden.
TYPED_TEST(Certify, StopGapStopsAndCountsImagesAtTheCap) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob(Preset::soft);
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  LcaParams p = converging(Preset::soft, prob.lambda, 5000);
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

// stats() (the certificate's sums without the drive) against plain sums on the host, at a
// code with both signs and zeros.
TYPED_TEST(Certify, StatsMatchPlainSums) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  const SmallLasso prob(Preset::soft);
  const auto d = prob.dictionary<S, Sp, L>();
  const auto xin = prob.images<S, Sp>();
  LcaSolver<S, Sp, L> solver(prob.g, converging(Preset::soft, prob.lambda, 1));
  solver.reset(prob.B);
  const auto a = random_vector(std::size_t(prob.B) * prob.g.neurons(), 8, 0.5);
  solver.set_activities(to_map<S, Sp, L>(prob.g, a, prob.B));
  solver.compute_residual(d, xin);
  const BatchStats st = solver.stats(xin);
  const auto phi_a = ref_reconstruct(prob.g, prob.dict, a, prob.B);
  const int n = prob.g.pixels();
  const std::size_t m = prob.g.neurons();
  for (int b = 0; b < prob.B; ++b) {
    double rr = 0, xx = 0, l1 = 0, nnz = 0, scale = 0;
    for (int i = 0; i < n; ++i) {
      const double x = prob.x[b * n + i], r = x - phi_a[b * n + i];
      rr += r * r, xx += x * x,
          scale +=
          (std::abs(x) + std::abs(phi_a[b * n + i])) * (std::abs(x) + std::abs(phi_a[b * n + i]));
    }
    for (std::size_t j = 0; j < m; ++j) {
      l1 += std::abs(a[b * m + j]);
      nnz += a[b * m + j] != 0;
    }
    const double eps = tol<S>(reconstruct_terms(prob.g) + 1, 1.0);
    EXPECT_NEAR(st.sq_residual[b], rr, 4 * eps * scale) << "image " << b;
    EXPECT_NEAR(st.sq_input[b], xx, tol<S>(n, xx)) << "image " << b;
    EXPECT_NEAR(st.l1[b], l1, tol<S>(double(m), l1)) << "image " << b;
    EXPECT_EQ(st.nnz[b], nnz) << "image " << b;
  }
}

} // namespace
} // namespace lca::test
