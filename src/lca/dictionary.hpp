#pragma once
// The convolutional dictionary Phi (algorithm.md §1, §4): stored on the device as a
// (c*k*k, nf) matrix D whose column m is feature phi_m flattened as (ch, ky, kx). Files and
// host code use the (nf, c, k, k) row-major order; conversion happens only here.
#include "lca/core.hpp"
#include "lca/params.hpp"

#include <cstdint>
#include <vector>

namespace lca {

template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
class Dictionary {
public:
  using V = Views<Scalar, Device, Layout>;
  using exec_space = typename V::exec_space;
  using Matrix = typename V::Matrix;

  /// A zero dictionary; its kernels run on exec.
  explicit Dictionary(const Geometry& g, const exec_space& exec = exec_space());

  const Geometry& geometry() const { return geom_; }
  const Matrix& matrix() const { return d_; }
  const exec_space& execution_space() const { return exec_; }

  /// Uniform [-1, 1] in (nf, c, k, k) order from a portable generator, then unit-normalised:
  /// identical on every backend and rank count.
  void init_random(std::uint64_t seed);
  /// Scale every feature to unit L2 norm (PetaVision normalizeL2); zero features stay zero.
  /// Runs on exec (the learner passes its own), by default on the dictionary's.
  void normalize(const exec_space& exec);
  void normalize() { normalize(exec_); }

  std::vector<float> to_host() const;             ///< (nf, c, k, k) row-major
  void from_host(const std::vector<float>& nckk); ///< throws InvalidArgument on size or NaN/Inf

private:
  Geometry geom_;
  exec_space exec_;
  Matrix d_;
};

} // namespace lca
