#include "lca/learner.hpp"

#include "lca/error.hpp"

#include <KokkosBlas3_gemm.hpp>

#include <cmath>
#include <type_traits>

namespace lca {

template <class Scalar, class Space>
Learner<Scalar, Space>::Learner(const Geometry& g, const LearnParams& p)
    : geom_((validate(g), g)), params_((validate(p), p)),
      grad_("lca::Learner::grad", g.patch(), g.nf),
      delta_("lca::Learner::momentum", g.patch(), g.nf) {}

template <class Scalar, class Space>
void Learner<Scalar, Space>::update(Dictionary<Scalar, Space>& dict,
                                    const LcaSolver<Scalar, Space>* local,
                                    std::int64_t global_batch, MPI_Comm comm) {
  Region region("lca::Learner::update");
  if (global_batch < 1)
    throw InvalidArgument("learning needs a global batch >= 1");
  // G(e, m) = sum_pos P(pos, e) a(pos, m): the correlation of each active neuron with the
  // residual patch it sees.
  if (local)
    KokkosBlas::gemm("T", "N", Scalar(1), local->patches(), local->activities(), Scalar(0), grad_);
  else
    Kokkos::deep_copy(grad_, Scalar(0));
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  if (ranks > 1) {
    // MPI buffers live on the host (no CUDA-aware MPI assumed).
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad_);
    const MPI_Datatype type = std::is_same<Scalar, float>::value ? MPI_FLOAT : MPI_DOUBLE;
    if (MPI_Allreduce(MPI_IN_PLACE, h.data(), int(h.size()), type, MPI_SUM, comm) != MPI_SUCCESS)
      throw Error("MPI_Allreduce of the dictionary gradient failed");
    Kokkos::deep_copy(grad_, h);
  }
  apply(dict, global_batch);
}

template <class Scalar, class Space>
void Learner<Scalar, Space>::apply(Dictionary<Scalar, Space>& dict, std::int64_t global_batch) {
  const Scalar mu = params_.momentum_tau > 0 ? Scalar(std::exp(-1.0 / params_.momentum_tau)) : 0;
  const Scalar scale = (Scalar(1) - mu) * Scalar(params_.eta) / Scalar(global_batch);
  const Scalar decay = Scalar(params_.decay);
  const auto G = grad_, D = delta_, W = dict.matrix();
  using exec = typename Views<Scalar, Space>::exec_space;
  Kokkos::parallel_for(
      "lca::Learner::momentum_step",
      Kokkos::MDRangePolicy<exec, Kokkos::Rank<2>>({0, 0}, {W.extent(0), W.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t e, std::int64_t m) {
        const Scalar d = scale * G(e, m) + mu * D(e, m) - decay * W(e, m);
        D(e, m) = d;
        W(e, m) += d;
      });
  dict.normalize();
}

template <class Scalar, class Space>
std::vector<float> Learner<Scalar, Space>::momentum_to_host() const {
  Dictionary<Scalar, Space> tmp(geom_);
  Kokkos::deep_copy(tmp.matrix(), delta_);
  return tmp.to_host();
}

template <class Scalar, class Space>
void Learner<Scalar, Space>::momentum_from_host(const std::vector<float>& nckk) {
  Dictionary<Scalar, Space> tmp(geom_);
  tmp.from_host(nckk);
  Kokkos::deep_copy(delta_, tmp.matrix());
}

LCA_INSTANTIATE(class, Learner)

} // namespace lca
