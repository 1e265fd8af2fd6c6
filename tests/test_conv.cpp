// The operator: Phi a and Phi^T r against plain loops; adjointness; the density choice between
// the scatter and GEMM + col2im; refused geometries.
#include "backends.hpp"
#include "device_io.hpp"
#include "kernel_recorder.hpp"
#include "lca/error.hpp"
#include "reference.hpp"
#include "solver_cases.hpp"

#include <algorithm>

namespace lca::test {
namespace {

struct Shape {
  int c, H, W, k, s, nf, B;
};
// RGB and gray, the (k, s) pairs of the study and others, odd nf, batch > 1, the dense
// case k = H = W, s = H, and fewer positions (2x3) than the scatter's colours (4x4).
const Shape shapes[] = {{3, 16, 16, 8, 2, 5, 2},  {1, 12, 12, 4, 2, 3, 3}, {3, 10, 10, 5, 1, 4, 2},
                        {1, 24, 24, 12, 4, 7, 2}, {3, 16, 16, 4, 4, 3, 2}, {1, 8, 8, 8, 8, 5, 3},
                        {3, 6, 8, 4, 2, 2, 2},    {1, 4, 6, 8, 2, 3, 2}};

Geometry geometry(const Shape& sh) {
  Geometry g;
  g.channels = sh.c, g.height = sh.H, g.width = sh.W, g.kernel = sh.k, g.stride = sh.s;
  g.nf = sh.nf;
  return g;
}

LcaParams default_params() {
  LcaParams p;
  p.transfer = make_transfer(Preset::soft, 0.1);
  return p;
}

template <class T> struct Conv : ::testing::Test {};
TYPED_TEST_SUITE(Conv, Configs, ConfigNames);

TYPED_TEST(Conv, ReconstructMatchesReference) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  unsigned seed = 1;
  for (const auto& sh : shapes) {
    const Geometry g = geometry(sh);
    SCOPED_TRACE("c=" + std::to_string(sh.c) + " k=" + std::to_string(sh.k) +
                 " s=" + std::to_string(sh.s));
    Dictionary<S, Sp, L> d(g);
    const auto w = random_vector(std::size_t(g.nf) * g.patch(), seed++);
    load_dictionary_exact(d, w);
    // Half the activities zero, both signs: exercises the active lists.
    const auto a = random_vector(std::size_t(sh.B) * g.neurons(), seed++, 0.5);
    LcaSolver<S, Sp, L> solver(g, default_params());
    solver.reset(sh.B);
    solver.set_activities(to_map<S, Sp, L>(g, a, sh.B));
    typename Views<S, Sp>::Images out("out", sh.B, g.pixels());
    solver.reconstruct(d, {}, out, S(1));
    const auto ref = ref_reconstruct(g, w, a, sh.B);
    const double n = reconstruct_terms(g);
    const double scale = max_abs(ref_reconstruct(g, abs_values(w), abs_values(a), sh.B));
    EXPECT_LE(max_abs_diff(from_images(out), ref), tol<S>(n, scale));
    // The dense path (GEMM + col2im gather) on the same code.
    solver.reconstruct_dense(d, solver.activities(), {}, out, S(1));
    EXPECT_LE(max_abs_diff(from_images(out), ref), tol<S>(n, scale));
    // out = x - Phi a, by both paths (|x| <= 1: one more term)
    const auto x = random_vector(std::size_t(sh.B) * g.pixels(), seed++);
    for (const bool dense : {false, true}) {
      SCOPED_TRACE(dense ? "dense" : "scatter");
      solver.use_dense(dense);
      solver.compute_residual(d, to_images<S, Sp>(x, sh.B, g.pixels()));
      auto r = from_images(solver.residual());
      for (std::size_t i = 0; i < r.size(); ++i)
        r[i] = x[i] - r[i];
      EXPECT_LE(max_abs_diff(r, ref), tol<S>(n + 1, scale + 1));
    }
  }
}

TYPED_TEST(Conv, DriveMatchesReference) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  unsigned seed = 100;
  for (const auto& sh : shapes) {
    const Geometry g = geometry(sh);
    SCOPED_TRACE("c=" + std::to_string(sh.c) + " k=" + std::to_string(sh.k) +
                 " s=" + std::to_string(sh.s));
    Dictionary<S, Sp, L> d(g);
    const auto w = random_vector(std::size_t(g.nf) * g.patch(), seed++);
    load_dictionary_exact(d, w);
    const auto r = random_vector(std::size_t(sh.B) * g.pixels(), seed++);
    LcaSolver<S, Sp, L> solver(g, default_params());
    solver.reset(sh.B);
    solver.im2col(to_images<S, Sp>(r, sh.B, g.pixels()));
    solver.apply_drive(d);
    const auto ref = ref_drive(g, w, r, sh.B);
    // Each drive sums its patch: c*k*k terms.
    const double scale = max_abs(ref_drive(g, abs_values(w), abs_values(r), sh.B));
    EXPECT_LE(max_abs_diff(from_map(g, solver.drive()), ref), tol<S>(g.patch(), scale));
  }
}

TYPED_TEST(Conv, Adjointness) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  unsigned seed = 200;
  for (const auto& sh : shapes) {
    const Geometry g = geometry(sh);
    Dictionary<S, Sp, L> d(g);
    d.init_random(seed++);
    const auto a = random_vector(std::size_t(sh.B) * g.neurons(), seed++, 0.3);
    const auto r = random_vector(std::size_t(sh.B) * g.pixels(), seed++);
    LcaSolver<S, Sp, L> solver(g, default_params());
    solver.reset(sh.B);
    solver.set_activities(to_map<S, Sp, L>(g, a, sh.B));
    typename Views<S, Sp>::Images phi_a("phi_a", sh.B, g.pixels());
    solver.reconstruct(d, {}, phi_a, S(1));
    solver.im2col(to_images<S, Sp>(r, sh.B, g.pixels()));
    solver.apply_drive(d);
    const auto pa = from_images(phi_a), ptr = from_map(g, solver.drive());
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < r.size(); ++i)
      lhs += pa[i] * r[i];
    for (std::size_t i = 0; i < a.size(); ++i)
      rhs += a[i] * ptr[i];
    // Both sides bound by <|r|, |Phi| |a|>; each output of Phi a and Phi^T r rounds as its
    // terms add up, and a and r themselves round to S.
    const auto w = d.to_host();
    const auto abs_phi_a = ref_reconstruct(g, abs_values(std::vector<double>(w.begin(), w.end())),
                                           abs_values(a), sh.B);
    double scale = 0;
    for (std::size_t i = 0; i < r.size(); ++i)
      scale += std::abs(r[i]) * abs_phi_a[i];
    EXPECT_LE(std::abs(lhs - rhs), tol<S>(reconstruct_terms(g) + g.patch() + 2, scale))
        << "<Phi a, r> = " << lhs << ", <a, Phi^T r> = " << rhs;
  }
}

// Past kDenseDensity active neurons LCA forms Phi a by GEMM + col2im (cheaper there than the
// scatter over the active lists): the same codes as plain steps, which always scatter, to
// rounding; and the dense product did run.
TYPED_TEST(Conv, LcaTakesTheDenseProductWhenManyNeuronsAreActive) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g = small_conv();
  g.channels = 3, g.nf = 6;
  const LcaParams p = converging(Preset::soft, 0.02, 60);
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

TEST(Geometry, RefusesIncompatibleShapes) {
  Geometry g;
  g.channels = 3, g.height = 32, g.width = 32;
  for (auto [k, s] : {std::pair{9, 2}, {8, 1}, {1, 2}, {0, 1}}) {
    g.kernel = k, g.stride = s;
    EXPECT_THROW(validate(g), InvalidArgument) << "k=" << k << " s=" << s;
  }
  g.kernel = 8, g.stride = 2;
  EXPECT_NO_THROW(validate(g));
  g.height = 31;
  EXPECT_THROW(validate(g), InvalidArgument);
  g.height = 32, g.nf = 0;
  EXPECT_THROW(validate(g), InvalidArgument);
  g.nf = 4, g.kernel = 9, g.stride = 2;
  try {
    Dictionary<float> d(g);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("kernel 9 and stride 2"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace lca::test
