#pragma once
// Kokkos Kernels' BLAS on an execution-space instance (private to the kernel layer).
//
// Kokkos Kernels takes the instance as the first argument from 4.1 on. Before that there is no
// such overload: a call runs on a default instance of its Views' execution space, which is the
// same space as ours (the Views are typed by our Device), so a Serial object still gets Serial
// BLAS; only the instance differs, and a default instance orders with every other (host spaces
// run synchronously, and Kokkos 3's default CUDA instance is the legacy default stream).
// Host BLAS (the TPL: OpenBLAS, MKL) runs with the threads of its own library on any host space.
#include <KokkosBlas1_nrm2.hpp>
#include <KokkosBlas1_scal.hpp>
#include <KokkosBlas3_gemm.hpp>
#include <KokkosKernels_config.h>

#include <type_traits>

#if defined(KOKKOSKERNELS_VERSION) && KOKKOSKERNELS_VERSION >= 40100
#define LCA_BLAS_ON_INSTANCE 1
#else
#define LCA_BLAS_ON_INSTANCE 0
#endif

namespace lca::blas {

template <class Exec, class View> void check_space() {
  static_assert(std::is_same<Exec, typename View::execution_space>::value,
                "a BLAS call runs on its output View's execution space");
}

/// C = beta C + alpha op(A) op(B)
template <class Exec, class A, class B, class C>
void gemm(const Exec& exec, const char* trans_a, const char* trans_b,
          typename A::const_value_type& alpha, const A& a, const B& b,
          typename C::const_value_type& beta, const C& c) {
  check_space<Exec, C>();
#if LCA_BLAS_ON_INSTANCE
  KokkosBlas::gemm(exec, trans_a, trans_b, alpha, a, b, beta, c);
#else
  (void)exec;
  KokkosBlas::gemm(trans_a, trans_b, alpha, a, b, beta, c);
#endif
}

/// r(j) = ||x(:, j)||_2
template <class Exec, class R, class X> void nrm2(const Exec& exec, const R& r, const X& x) {
  check_space<Exec, R>();
#if LCA_BLAS_ON_INSTANCE
  KokkosBlas::nrm2(exec, r, x);
#else
  (void)exec;
  KokkosBlas::nrm2(r, x);
#endif
}

/// r(:, j) = a(j) x(:, j)
template <class Exec, class R, class A, class X>
void scal(const Exec& exec, const R& r, const A& a, const X& x) {
  check_space<Exec, R>();
#if LCA_BLAS_ON_INSTANCE
  KokkosBlas::scal(exec, r, a, x);
#else
  (void)exec;
  KokkosBlas::scal(r, a, x);
#endif
}

} // namespace lca::blas
