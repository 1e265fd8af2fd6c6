// Uses the installed library the way a downstream code that only solves would: the kernel
// layer alone (no MPI, no files), a random dictionary, one batch of random images, FISTA to a
// certified gap. Exit 0 only if every image is certified.
#include <lca/dictionary.hpp>
#include <lca/solver.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  int rc = 1;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    lca::Geometry g;
    g.channels = 1, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
    lca::LcaParams p;
    p.solver = lca::Solver::fista, p.stop_gap = 1e-3, p.iterations = 5000;
    p.transfer = lca::make_transfer(lca::Preset::soft_nonneg, 0.1);
    lca::Dictionary<float> d(g);
    d.init_random(1);
    lca::LcaSolver<float> s(g, p);
    s.reset(2);
    lca::Views<float>::Images x("x", 2, g.pixels());
    auto h = Kokkos::create_mirror_view(x);
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < g.pixels(); ++t)
        h(b, t) = float((b + 1) * ((t * 37) % 11) - 5) / 5.0f;
    Kokkos::deep_copy(x, h);
    const lca::SolveInfo info = s.solve(d, x);
    std::printf("consumer: %d iterations, gaps %.2e %.2e, %d above\n", info.iterations,
                info.certificates[0].gap, info.certificates[1].gap, info.unconverged);
    rc = info.unconverged == 0 ? 0 : 1;
  }
  return rc;
}
