#pragma once
// The convolutional dictionary Phi (algorithm.md §1, §4): stored on the device as a
// (c*k*k, nf) matrix D whose column m is feature phi_m flattened as (ch, ky, kx). Files and
// host code use the (nf, c, k, k) row-major order; conversion happens only here.
#include "lca/core.hpp"
#include "lca/params.hpp"

#include <cstdint>
#include <vector>

namespace lca {

template <class Scalar, class Space = Kokkos::DefaultExecutionSpace> class Dictionary {
public:
  using V = Views<Scalar, Space>;
  using Matrix = typename V::Matrix;

  explicit Dictionary(const Geometry& g);

  const Geometry& geometry() const { return geom_; }
  const Matrix& matrix() const { return d_; }

  /// Uniform [-1, 1] in (nf, c, k, k) order from a portable generator, then unit-normalised:
  /// identical on every backend and rank count.
  void init_random(std::uint64_t seed);
  /// Scale every feature to unit L2 norm (PetaVision normalizeL2); zero features stay zero.
  void normalize();

  std::vector<float> to_host() const;             ///< (nf, c, k, k) row-major
  void from_host(const std::vector<float>& nckk); ///< throws InvalidArgument on size or NaN/Inf

private:
  Geometry geom_;
  Matrix d_;
};

} // namespace lca
