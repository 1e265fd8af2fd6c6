#pragma once
// Dictionary learning (algorithm.md §4): SGD with PetaVision's viscosity momentum, decay and
// per-feature L2 normalisation. The gradient of -E, G = P^T a (one GEMM over the final
// residual patches and activities), is summed over MPI ranks and divided by the global batch.
#include "lca/dictionary.hpp"
#include "lca/solver.hpp"

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace lca {

template <class Scalar, class Space = Kokkos::DefaultExecutionSpace> class Learner {
public:
  using Matrix = typename Views<Scalar, Space>::Matrix;

  Learner(const Geometry& g, const LearnParams& p);

  /// One SGD step from the solver's final state. global_batch = images over all ranks.
  /// Every rank must call it (collective over comm); all ranks end with the same dictionary.
  /// A rank with no images in this batch passes local = nullptr.
  void update(Dictionary<Scalar, Space>& dict, const LcaSolver<Scalar, Space>* local,
              std::int64_t global_batch, MPI_Comm comm);

  /// Gradient of the last update (before scaling), (c*k*k, nf).
  const Matrix& gradient() const { return grad_; }

  std::vector<float> momentum_to_host() const; ///< (nf, c, k, k)
  void momentum_from_host(const std::vector<float>& nckk);

  /// The step on a given gradient (summed over the global batch): momentum, decay, add,
  /// normalise. Public for tests and because CUDA lambdas cannot live in private members.
  void apply(Dictionary<Scalar, Space>& dict, std::int64_t global_batch);

private:
  Geometry geom_;
  LearnParams params_;
  Matrix grad_, delta_;
};

} // namespace lca
