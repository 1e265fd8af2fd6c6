// Support polishing: conjugate gradient on a stable support makes the certificate exact.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <map>

namespace lca::test {
namespace {

template <class T> struct Polish : ::testing::Test {};
TYPED_TEST_SUITE(Polish, Configs, ConfigNames);

// Polishing on a stable support makes the code exact: with it, LCA certifies a tight gap in
// far fewer iterations than without, and the code is the optimum.
TYPED_TEST(Polish, PolishingMakesTheCertificateExact) {
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

} // namespace
} // namespace lca::test
