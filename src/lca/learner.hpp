#pragma once
// Dictionary learning (algorithm.md §4): SGD with PetaVision's viscosity momentum, decay and
// per-feature L2 normalisation. The gradient of -E, G = P^T a (one GEMM over the final
// residual patches and activities), is summed over the participants of a distributed batch by
// a hook the caller provides (the drivers pass an MPI_Allreduce) and divided by the global
// batch. No MPI here.
#include "lca/dictionary.hpp"
#include "lca/solver.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace lca {

template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
class Learner {
public:
  using V = Views<Scalar, Device, Layout>;
  using exec_space = typename V::exec_space;
  using Matrix = typename V::Matrix;
  /// Sums data[0, n) in place over every participant of the batch, on the host (e.g. an
  /// MPI_Allreduce over the ranks). Empty: one participant, nothing to sum.
  using SumInPlace = std::function<void(Scalar* data, std::size_t n)>;

  /// Kernels and BLAS run on exec (the solver's and dictionary's instance).
  Learner(const Geometry& g, const LearnParams& p, const exec_space& exec = exec_space());

  const exec_space& execution_space() const { return exec_; }

  /// The learning rate of the next updates (the driver's schedule sets it every epoch).
  void set_eta(double eta) { params_.eta = eta; }

  /// One SGD step from the solver's final state. global_batch = images over all participants,
  /// whose gradients `sum` adds up; then all of them end with the same dictionary (every one
  /// must call it). A participant with no images in this batch passes local = nullptr.
  void update(Dictionary<Scalar, Device, Layout>& dict,
              const LcaSolver<Scalar, Device, Layout>* local, std::int64_t global_batch,
              const SumInPlace& sum = {});

  /// Gradient of the last update (before scaling), (c*k*k, nf).
  const Matrix& gradient() const { return grad_; }

  std::vector<float> momentum_to_host() const; ///< (nf, c, k, k)
  void momentum_from_host(const std::vector<float>& nckk);

  /// The step on a given gradient (summed over the global batch): momentum, decay, add,
  /// normalise. Public for tests and because CUDA lambdas cannot live in private members.
  void apply(Dictionary<Scalar, Device, Layout>& dict, std::int64_t global_batch);

private:
  Geometry geom_;
  LearnParams params_;
  exec_space exec_;
  Matrix grad_, delta_;
};

} // namespace lca
