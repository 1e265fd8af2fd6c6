#pragma once
// View types shared by the solver and the learner.
//
// Device rules every kernel here follows (one code path for Serial, OpenMP and CUDA):
//  - device Views are touched on the host only at I/O boundaries, through
//    create_mirror(_view) + deep_copy (Dictionary::to_host/from_host, LcaSolver::stats, the
//    batch upload in train/denoise); kernels are KOKKOS_LAMBDA / KOKKOS_INLINE_FUNCTION only;
//  - no std:: math inside kernels (decay factors etc. are computed on the host; |x| and max
//    are written out), so nothing depends on which math functions a device provides;
//  - MPI sees host buffers only (the gradient is mirrored before MPI_Allreduce): no
//    CUDA-aware MPI is assumed;
//  - lambdas that launch kernels live in public member functions, never inside another
//    lambda (nvcc requirements).
// Layouts: matrices whose first index is the one kernels parallelise over (position, or
// kernel element) use the execution space's default layout: row-contiguous on CPUs (cache
// lines along the inner loop), column-contiguous on GPUs (coalesced across threads). Images
// stay row-major (B, c*H*W) for I/O.
#include <Kokkos_Core.hpp>

#include <string>

namespace lca {

template <class Scalar, class Space = Kokkos::DefaultExecutionSpace> struct Views {
  using exec_space = typename Space::execution_space;
  using memory_space = typename Space::memory_space;
  using layout = typename exec_space::array_layout;
  /// (rows, cols) matrix in the default layout: dictionary (c*k*k, nf), maps (B*positions, nf).
  using Matrix = Kokkos::View<Scalar**, layout, memory_space>;
  /// (B, c*H*W) images, row-major.
  using Images = Kokkos::View<Scalar**, Kokkos::LayoutRight, memory_space>;
  using ConstImages = Kokkos::View<const Scalar**, Kokkos::LayoutRight, memory_space>;
  using IndexMatrix = Kokkos::View<int**, layout, memory_space>;
  using IndexVector = Kokkos::View<int*, memory_space>;
};

/// Profiling region for Kokkos Tools (Kokkos 3.4 has no ScopedRegion).
struct Region {
  explicit Region(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
  ~Region() { Kokkos::Profiling::popRegion(); }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
};

/// sqrt inside kernels: Kokkos 3.4 has it as Kokkos::Experimental::sqrt, Kokkos 4 as
/// Kokkos::sqrt (the Experimental name is gone there).
KOKKOS_INLINE_FUNCTION double device_sqrt(double x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::sqrt(x);
#else
  return Kokkos::Experimental::sqrt(x);
#endif
}

/// The Kokkos backend this build runs on, e.g. "OpenMP" or "Cuda".
inline std::string backend_name() {
  return Kokkos::DefaultExecutionSpace::name();
}

} // namespace lca

// Serial is compiled as a second backend whenever it is enabled beside a parallel default
// (tests run every kernel on both); Kokkos 3.4 has no macro naming the default space.
#if defined(KOKKOS_ENABLE_SERIAL) &&                                                               \
    (defined(KOKKOS_ENABLE_OPENMP) || defined(KOKKOS_ENABLE_CUDA) ||                               \
     defined(KOKKOS_ENABLE_THREADS) || defined(KOKKOS_ENABLE_HIP) || defined(KOKKOS_ENABLE_SYCL))
#define LCA_HAS_SECOND_SERIAL 1
#define LCA_INSTANTIATE_SERIAL(KIND, NAME)                                                         \
  template KIND NAME<float, Kokkos::Serial>;                                                       \
  template KIND NAME<double, Kokkos::Serial>;
#else
#define LCA_HAS_SECOND_SERIAL 0
#define LCA_INSTANTIATE_SERIAL(KIND, NAME)
#endif
/// Explicit instantiation for float and double on the default space (and Serial, above).
#define LCA_INSTANTIATE(KIND, NAME)                                                                \
  template KIND NAME<float>;                                                                       \
  template KIND NAME<double>;                                                                      \
  LCA_INSTANTIATE_SERIAL(KIND, NAME)
