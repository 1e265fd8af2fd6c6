#pragma once
// View types and conventions of the kernel layer (dictionary, solver, learner): Kokkos code
// written once, Device-typed, with no MPI and no files.
//
// Device rules every kernel here follows (one code path for Serial, OpenMP and CUDA):
//  - every kernel, deep_copy between device Views and Kokkos Kernels call runs on the
//    execution-space instance its object was built with (a default instance unless given), so
//    a Serial instantiation runs Serial and a CUDA stream can be passed down;
//  - device Views are touched on the host only at I/O boundaries, through
//    create_mirror(_view) + deep_copy (Dictionary::to_host/from_host, the solver's per-image
//    sums and scalars through mirrors allocated with their Views, the batch upload in
//    train/denoise); kernels are KOKKOS_LAMBDA / KOKKOS_INLINE_FUNCTION only;
//  - no std:: math inside kernels (decay factors etc. are computed on the host; |x| and max
//    are written out), so nothing depends on which math functions a device provides;
//  - the distributed layer sees host buffers only (the learner mirrors the gradient before its
//    reduction hook): no CUDA-aware MPI is assumed;
//  - lambdas that launch kernels live in free functions (the solver's lca::Impl kernels, which
//    take the execution-space instance first) or public member functions, never inside another
//    lambda (nvcc requirements).
// Layouts: matrices whose first index is the one kernels parallelise over (position, or
// kernel element) use the execution space's default layout by default: row-contiguous on CPUs
// (cache lines along the inner loop), column-contiguous on GPUs (coalesced across threads); the
// other layout gives the same results. Images stay row-major (B, c*H*W) for I/O.
#include <Kokkos_Core.hpp>

#include <string>
#include <type_traits>

namespace lca {

/// Where the library runs by default: Kokkos::Device<DefaultExecutionSpace, its memory space>.
using DefaultDevice = Kokkos::DefaultExecutionSpace::device_type;

/// The layout Device's execution space does not default to: LayoutLeft (the GPU's) on host
/// spaces, LayoutRight on GPUs. It is compiled too, so that the tests run both layouts on every
/// backend.
template <class Device>
using OtherLayout = std::conditional_t<
    std::is_same<typename Device::execution_space::array_layout, Kokkos::LayoutLeft>::value,
    Kokkos::LayoutRight, Kokkos::LayoutLeft>;

/// The View types of the kernel layer on Device = Kokkos::Device<ExecutionSpace, MemorySpace>
/// (e.g. Kokkos::Serial::device_type), matrices in Layout. Kernels run on an instance of
/// Device's execution space, Kokkos Kernels' BLAS included (it dispatches on the Views' device).
template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
struct Views {
  static_assert(std::is_same<Device, Kokkos::Device<typename Device::execution_space,
                                                    typename Device::memory_space>>::value,
                "Device must be a Kokkos::Device<ExecutionSpace, MemorySpace>, e.g. "
                "Kokkos::Serial::device_type");
  using device_type = Device;
  using exec_space = typename Device::execution_space;
  using memory_space = typename Device::memory_space;
  using layout = Layout;
  /// (rows, cols) matrix: dictionary (c*k*k, nf), maps (B*positions, nf).
  using Matrix = Kokkos::View<Scalar**, Layout, Device>;
  /// (B, c*H*W) images, row-major.
  using Images = Kokkos::View<Scalar**, Kokkos::LayoutRight, Device>;
  using ConstImages = Kokkos::View<const Scalar**, Kokkos::LayoutRight, Device>;
  using IndexMatrix = Kokkos::View<int**, Layout, Device>;
  using IndexVector = Kokkos::View<int*, Device>;
  template <class T> using Vector = Kokkos::View<T*, Device>;
};

/// Allocation properties: a label, on the given execution-space instance (which runs the
/// zero fill), and without the fill for buffers that are always written before they are read.
template <class Exec> auto alloc(const Exec& exec, const std::string& label) {
  return Kokkos::view_alloc(exec, label);
}
template <class Exec> auto scratch(const Exec& exec, const std::string& label) {
  return Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, label);
}

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

// The kernel layer is compiled for float and double on the default device in its own layout
// (what the apps run) and, for the tests, float in the other layout; when Serial is enabled
// beside a parallel default, also float and double on Serial and double on Serial in the other
// layout (LayoutLeft). Kokkos 3.4 has no macro naming the default space.
#if defined(KOKKOS_ENABLE_SERIAL) &&                                                               \
    (defined(KOKKOS_ENABLE_OPENMP) || defined(KOKKOS_ENABLE_CUDA) ||                               \
     defined(KOKKOS_ENABLE_THREADS) || defined(KOKKOS_ENABLE_HIP) || defined(KOKKOS_ENABLE_SYCL))
#define LCA_HAS_SECOND_SERIAL 1
#define LCA_INSTANTIATE_SERIAL(KIND, NAME)                                                         \
  template KIND NAME<float, Kokkos::Serial::device_type>;                                          \
  template KIND NAME<double, Kokkos::Serial::device_type>;                                         \
  template KIND                                                                                    \
      NAME<double, Kokkos::Serial::device_type, lca::OtherLayout<Kokkos::Serial::device_type>>;
#else
#define LCA_HAS_SECOND_SERIAL 0
#define LCA_INSTANTIATE_SERIAL(KIND, NAME)
#endif
/// Explicit instantiation of a kernel-layer class template for the combinations above.
#define LCA_INSTANTIATE(KIND, NAME)                                                                \
  template KIND NAME<float>;                                                                       \
  template KIND NAME<double>;                                                                      \
  template KIND NAME<float, lca::DefaultDevice, lca::OtherLayout<lca::DefaultDevice>>;             \
  LCA_INSTANTIATE_SERIAL(KIND, NAME)
