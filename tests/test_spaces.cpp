// Execution spaces: every kernel of an instantiation runs on that instantiation's space,
// Kokkos Kernels' included (checked with Kokkos Tools callbacks).
#include "backends.hpp"
#include "device_io.hpp"
#include "kernel_recorder.hpp"
#include "lca/learner.hpp"
#include "reference.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lca::test {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

template <class T> struct Spaces : ::testing::Test {};
TYPED_TEST_SUITE(Spaces, Configs, ConfigNames);

// A Serial instantiation must not run its kernels, or Kokkos Kernels' BLAS, on the default
// host space (OpenMP threads): then the Serial tests would not test Serial.
TYPED_TEST(Spaces, EveryKernelRunsOnTheInstantiationsSpace) {
  using S = typename TypeParam::Scalar;
  using Sp = typename TypeParam::Device;
  using L = typename TypeParam::Layout;
  Geometry g;
  g.channels = 2, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
  LcaParams p;
  p.transfer = make_transfer(Preset::soft, 0.1);
  p.solver = Solver::fista, p.iterations = 20, p.stop_gap = 1e-6, p.check_every = 5;
  const int B = 2;
  const auto x = to_images<S, Sp>(random_vector(std::size_t(B) * g.pixels(), 5), B, g.pixels());
  Dictionary<S, Sp, L> d(g);
  LcaSolver<S, Sp, L> solver(g, p);
  Learner<S, Sp, L> learner(g, LearnParams{});
  std::vector<KernelRecorder::Launch> log;
  {
    KernelRecorder recorder;
    d.init_random(3); // normalisation: KokkosBlas nrm2 and scal
    solver.reset(B);
    solver.solve(d, x);
    learner.update(d, &solver, B);
    log = recorder.launches();
  }
  const std::uint32_t expected = Kokkos::Tools::Experimental::device_id(solver.execution_space());
  int ours = 0, blas = 0;
  for (const auto& launch : log) {
    const bool lca = starts_with(launch.label, "lca::");
    const bool kk = starts_with(launch.label, "KokkosBlas::");
    ours += lca, blas += kk;
    if (lca || kk)
      EXPECT_EQ(launch.device, expected) << launch.label << " ran on another execution space";
  }
  EXPECT_GT(ours, 0);
  EXPECT_GT(blas, 0) << "no Kokkos Kernels kernel was seen: the check would be empty";
}

} // namespace
} // namespace lca::test
