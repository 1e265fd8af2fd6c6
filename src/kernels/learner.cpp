#include "lca/learner.hpp"

#include "blas.hpp"
#include "lca/error.hpp"

#include <cmath>

namespace lca {

template <class Scalar, class Device, class Layout>
Learner<Scalar, Device, Layout>::Learner(const Geometry& g, const LearnParams& p,
                                         const exec_space& exec)
    : geom_((validate(g), g)), params_((validate(p), p)), exec_(exec),
      grad_(alloc(exec, "lca::Learner::grad"), g.patch(), g.nf),
      delta_(alloc(exec, "lca::Learner::momentum"), g.patch(), g.nf) {}

template <class Scalar, class Device, class Layout>
void Learner<Scalar, Device, Layout>::update(Dictionary<Scalar, Device, Layout>& dict,
                                             const LcaSolver<Scalar, Device, Layout>* local,
                                             std::int64_t global_batch, const SumInPlace& sum) {
  Region region("lca::Learner::update");
  if (global_batch < 1)
    throw InvalidArgument("learning needs a global batch >= 1");
  // G(e, m) = sum_pos P(pos, e) a(pos, m): the correlation of each active neuron with the
  // residual patch it sees.
  if (local)
    blas::gemm(exec_, "T", "N", Scalar(1), local->patches(), local->activities(), Scalar(0), grad_);
  else
    Kokkos::deep_copy(exec_, grad_, Scalar(0));
  if (sum) {
    // The hook sees a host buffer (no CUDA-aware MPI assumed).
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad_);
    sum(h.data(), h.size());
    Kokkos::deep_copy(grad_, h);
  }
  apply(dict, global_batch);
}

template <class Scalar, class Device, class Layout>
void Learner<Scalar, Device, Layout>::apply(Dictionary<Scalar, Device, Layout>& dict,
                                            std::int64_t global_batch) {
  const Scalar mu = params_.momentum_tau > 0 ? Scalar(std::exp(-1.0 / params_.momentum_tau)) : 0;
  const Scalar scale = (Scalar(1) - mu) * Scalar(params_.eta) / Scalar(global_batch);
  const Scalar decay = Scalar(params_.decay);
  const auto G = grad_, D = delta_, W = dict.matrix();
  Kokkos::parallel_for(
      "lca::Learner::momentum_step",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {W.extent(0), W.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t e, std::int64_t m) {
        const Scalar d = scale * G(e, m) + mu * D(e, m) - decay * W(e, m);
        D(e, m) = d;
        W(e, m) += d;
      });
  dict.normalize(exec_);
}

template <class Scalar, class Device, class Layout>
std::vector<float> Learner<Scalar, Device, Layout>::momentum_to_host() const {
  Dictionary<Scalar, Device, Layout> tmp(geom_, exec_);
  Kokkos::deep_copy(tmp.matrix(), delta_); // an I/O boundary: fenced
  return tmp.to_host();
}

template <class Scalar, class Device, class Layout>
void Learner<Scalar, Device, Layout>::momentum_from_host(const std::vector<float>& nckk) {
  Dictionary<Scalar, Device, Layout> tmp(geom_, exec_);
  tmp.from_host(nckk);
  Kokkos::deep_copy(delta_, tmp.matrix()); // an I/O boundary: fenced
}

LCA_INSTANTIATE(class, Learner)

} // namespace lca
