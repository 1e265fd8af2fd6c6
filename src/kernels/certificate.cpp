// The energy, the per-image statistics and the duality-gap certificate on the host (the
// kernel that reduces their sums is in certificate.hpp).
#include "certificate.hpp"

#include <algorithm>
#include <cmath>

namespace lca {

double energy(const Transfer& t, double sq_residual, double l1, double nnz) {
  const double penalty = t.l0_penalty ? 0.5 * t.lambda * t.lambda * nnz : t.lambda * l1;
  return 0.5 * sq_residual + penalty;
}

double BatchStats::energy(std::size_t b, const Transfer& t) const {
  return lca::energy(t, sq_residual[b], l1[b], nnz[b]);
}

double BatchStats::percent_error(std::size_t b) const {
  return sq_input[b] > 0 ? 100.0 * std::sqrt(sq_residual[b] / sq_input[b]) : 0.0;
}

} // namespace lca
