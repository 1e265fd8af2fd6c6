// Dictionary learning: reference gradient, planted-dictionary recovery, rank independence.
#include "backends.hpp"
#include "device_io.hpp"
#include "lca/learner.hpp"
#include "lca/mpi.hpp"
#include "reference.hpp"

#include <cmath>
#include <random>

namespace lca::test {
namespace {

template <class T> struct Learning : ::testing::Test {};
TYPED_TEST_SUITE(Learning, Configs, ConfigNames);

// G_m = sum_b sum_(y,x) a_m,b(y,x) r_b[patch (y,x)], from plain loops.
TYPED_TEST(Learning, GradientMatchesReference) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 3, g.height = 12, g.width = 12, g.kernel = 6, g.stride = 2, g.nf = 5;
  const int B = 2, C = 3, k = 6, s = 2, p = g.pad(), Hs = g.out_h(), Ws = g.out_w();
  Dictionary<S, Sp, L> d(g);
  d.init_random(4);
  LcaParams lp;
  lp.transfer = make_transfer(Preset::soft, 0.1);
  LcaSolver<S, Sp, L> solver(g, lp);
  solver.reset(B);
  const auto a = random_vector(std::size_t(B) * g.neurons(), 21, 0.6);
  const auto x = random_vector(std::size_t(B) * g.pixels(), 22);
  solver.set_activities(to_map<S, Sp, L>(g, a, B));
  solver.compute_residual(d, to_images<S, Sp>(x, B, g.pixels()));
  const auto r = from_images(solver.residual());
  LearnParams learn;
  Learner<S, Sp, L> learner(g, learn);
  learner.update(d, &solver, B);
  const auto got = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), learner.gradient());
  double worst = 0, scale = 0; // scale: the largest sum of |terms| of an element
  for (int m = 0; m < g.nf; ++m)
    for (int ch = 0; ch < C; ++ch)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          double ref = 0, abs_sum = 0;
          for (int b = 0; b < B; ++b)
            for (int y = 0; y < Hs; ++y)
              for (int xx = 0; xx < Ws; ++xx) {
                const int i = s * y + ky - p, j = s * xx + kx - p;
                if (i < 0 || i >= g.height || j < 0 || j >= g.width)
                  continue;
                const double term = a[((std::size_t(b) * g.nf + m) * Hs + y) * Ws + xx] *
                                    r[((std::size_t(b) * C + ch) * g.height + i) * g.width + j];
                ref += term, abs_sum += std::abs(term);
              }
          const double v = double(got((ch * k + ky) * k + kx, m));
          worst = std::max(worst, std::abs(v - ref));
          scale = std::max(scale, abs_sum);
        }
  // Each element sums B * positions products (a rounds to S; r is the solver's own).
  EXPECT_LE(worst, tol<S>(double(B) * g.positions() + 1, scale));
}

TYPED_TEST(Learning, MomentumDecayAndNormalisation) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 1, g.height = 4, g.width = 4, g.kernel = 4, g.stride = 4, g.nf = 3;
  LearnParams lp;
  lp.eta = 0.5, lp.momentum_tau = 2, lp.decay = 0.1;
  Learner<S, Sp, L> learner(g, lp);
  Dictionary<S, Sp, L> d(g);
  d.init_random(2);
  const auto w0 = d.to_host();
  d.from_host(w0); // the device holds exactly the float values the reference starts from
  const auto g0 = random_vector(w0.size(), 3);
  const auto m0 = random_vector(w0.size(), 4);
  learner.momentum_from_host(std::vector<float>(m0.begin(), m0.end()));
  Dictionary<S, Sp, L> gd(g);
  load_dictionary(gd, g0);
  Kokkos::deep_copy(learner.gradient(), gd.matrix());
  learner.apply(d, 4);
  // algorithm.md §4 by hand
  const double mu = std::exp(-1.0 / lp.momentum_tau);
  std::vector<double> delta(w0.size()), w(w0.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    delta[i] =
        (1 - mu) * lp.eta * double(float(g0[i])) / 4 + mu * double(float(m0[i])) - lp.decay * w0[i];
    w[i] = w0[i] + delta[i];
  }
  const int n = g.patch();
  for (int m = 0; m < g.nf; ++m) {
    double nrm = 0;
    for (int e = 0; e < n; ++e)
      nrm += w[m * n + e] * w[m * n + e];
    for (int e = 0; e < n; ++e)
      w[m * n + e] /= std::sqrt(nrm);
  }
  // A few operations per element, the norm sums n squares; values are O(1). The momentum
  // comes back through float (momentum_to_host).
  const auto got = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d.matrix());
  const auto mom = learner.momentum_to_host();
  for (int m = 0; m < g.nf; ++m)
    for (int e = 0; e < n; ++e) {
      const std::size_t i = std::size_t(m) * n + e;
      EXPECT_NEAR(double(got(e, m)), w[i], tol<S>(n + 4, 1.0)) << i;
      EXPECT_NEAR(mom[i], delta[i],
                  tol<S>(4, 1.0) + std::numeric_limits<float>::epsilon() * std::abs(delta[i]))
          << i;
    }
}

// Data made from known sparse codes of a random unit-norm dictionary: training must find
// every planted atom (|cosine| >= 0.9 with some learned atom), with either solver.
template <class S, class Sp, class L> void recover_planted(Solver solver_kind) {
  Geometry truth;
  truth.channels = 1, truth.height = 8, truth.width = 8, truth.kernel = 8, truth.stride = 8;
  truth.nf = 10;
  Geometry g = truth;
  g.nf = 16;
  std::mt19937_64 gen(123);
  std::normal_distribution<double> normal;
  const int n = g.patch();
  std::vector<double> planted(std::size_t(truth.nf) * n);
  for (int m = 0; m < truth.nf; ++m) {
    double nrm = 0;
    for (int e = 0; e < n; ++e)
      nrm += std::pow(planted[m * n + e] = normal(gen), 2);
    for (int e = 0; e < n; ++e)
      planted[m * n + e] /= std::sqrt(nrm);
  }
  LcaParams lp;
  lp.tau = 10, lp.dt = 1, lp.iterations = 150;
  lp.transfer = make_transfer(Preset::soft_nonneg, 0.1);
  lp.solver = solver_kind;
  LearnParams learn;
  learn.eta = 0.5, learn.momentum_tau = 0, learn.seed = 5;
  Dictionary<S, Sp, L> d(g);
  d.init_random(learn.seed);
  LcaSolver<S, Sp, L> solver(g, lp);
  Learner<S, Sp, L> learner(g, learn);
  const int B = 32;
  solver.reset(B);
  std::uniform_int_distribution<int> pick(0, truth.nf - 1);
  std::uniform_real_distribution<double> coef(0.5, 1.5);
  for (int batch = 0; batch < 250; ++batch) {
    std::vector<double> x(std::size_t(B) * n, 0.0);
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < 3; ++q) {
        const int m = pick(gen);
        const double c = coef(gen);
        for (int e = 0; e < n; ++e)
          x[b * n + e] += c * planted[m * n + e];
      }
    solver.reset(B);
    solver.solve(d, to_images<S, Sp>(x, B, n));
    learner.update(d, &solver, B);
  }
  const auto w = d.to_host();
  for (int t = 0; t < truth.nf; ++t) {
    double best = 0;
    for (int m = 0; m < g.nf; ++m) {
      double dot = 0;
      for (int e = 0; e < n; ++e)
        dot += planted[t * n + e] * w[m * n + e];
      best = std::max(best, std::abs(dot));
    }
    EXPECT_GE(best, 0.9) << "planted atom " << t << " not recovered";
  }
}

TYPED_TEST(Learning, RecoversPlantedDictionary) {
  for (const Solver solver_kind : {Solver::lca, Solver::fista}) {
    SCOPED_TRACE(to_string(solver_kind));
    recover_planted<typename TypeParam::Scalar, typename TypeParam::Device,
                    typename TypeParam::Layout>(solver_kind);
  }
}

// The reduction hook is what makes a batch global: two participants with the same images
// contribute twice the gradient over twice the batch, which is the step of one alone, exactly
// (a factor of two rounds exactly).
TYPED_TEST(Learning, SumHookAddsTheParticipantsGradients) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 1, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
  LcaParams lp;
  lp.transfer = make_transfer(Preset::soft_nonneg, 0.05);
  lp.iterations = 20;
  const int B = 2;
  const auto x = to_images<S, Sp>(random_vector(std::size_t(B) * g.pixels(), 9), B, g.pixels());
  Dictionary<S, Sp, L> alone(g), pair(g);
  alone.init_random(6), pair.init_random(6);
  LcaSolver<S, Sp, L> solver(g, lp);
  solver.reset(B);
  solver.solve(alone, x);
  Learner<S, Sp, L> one(g, LearnParams{}), two(g, LearnParams{});
  one.update(alone, &solver, B);
  std::size_t summed = 0;
  two.update(pair, &solver, 2 * B, [&](S* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      data[i] += data[i]; // the other participant's identical gradient
    summed = n;
  });
  EXPECT_EQ(summed, std::size_t(g.patch()) * g.nf);
  EXPECT_EQ(alone.to_host(), pair.to_host());
}

// Each rank infers its share of a global batch of 3 (uneven at 2 ranks; at 4, rank 0 has no
// image) and the gradients are summed over the ranks: the dictionary must be the one of a single
// process doing the whole batch.
TEST(LearningMpi, ResultIndependentOfRankCount) {
  const int rank = mpi::rank(MPI_COMM_WORLD), ranks = mpi::size(MPI_COMM_WORLD);
  Geometry g;
  g.channels = 3, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 6;
  LcaParams lp;
  lp.iterations = 30, lp.tau = 10;
  lp.transfer = make_transfer(Preset::soft_nonneg, 0.05);
  LearnParams learn;
  learn.eta = 0.1;
  const int B = 3;
  const auto x = random_vector(std::size_t(B) * g.pixels(), 77);
  auto run = [&](const mpi::Slice& mine, const Learner<float>::SumInPlace& sum) {
    Dictionary<float> d(g);
    d.init_random(1);
    LcaSolver<float> solver(g, lp);
    Learner<float> learner(g, learn);
    const int count = int(mine.count);
    const std::vector<double> images(x.begin() + mine.first * g.pixels(),
                                     x.begin() + (mine.first + count) * g.pixels());
    for (int step = 0; step < 3; ++step) {
      if (count > 0) {
        solver.reset(count);
        solver.solve(d, to_images<float, DefaultDevice>(images, count, g.pixels()));
      }
      learner.update(d, count > 0 ? &solver : nullptr, B, sum);
    }
    return d.to_host();
  };
  const auto split = run(mpi::slice(B, rank, ranks), mpi::sum_in_place<float>(MPI_COMM_WORLD));
  const auto whole = run({0, B}, {});
  for (std::size_t i = 0; i < whole.size(); ++i)
    ASSERT_NEAR(split[i], whole[i], 1e-5) << i;
}

} // namespace
} // namespace lca::test
