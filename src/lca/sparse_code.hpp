#pragma once
// A code kept between solves (warm starts, checkpoints): no Kokkos, so the io layer can hold it.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lca {

/// One image's code as its nonzero entries: index pos * nf + feature within the image (pos the
/// code position, row-major over the out_h x out_w grid), ascending, and the value. About 3 %
/// of a dense code at the study's sparsities.
struct SparseCode {
  std::vector<std::int32_t> index;
  std::vector<float> value;
};

/// "" if c is what a solve leaves for an image of `neurons` neurons (indices ascending in
/// [0, neurons), as many finite nonzero values), else what is wrong: the one check that
/// warm_start() and the checkpoints apply.
inline std::string problem(const SparseCode& c, std::int64_t neurons) {
  if (c.index.size() != c.value.size())
    return std::to_string(c.index.size()) + " indices and " + std::to_string(c.value.size()) +
           " values";
  for (std::size_t k = 0; k < c.index.size(); ++k) {
    if (c.index[k] < 0 || c.index[k] >= neurons || (k > 0 && c.index[k] <= c.index[k - 1]))
      return "the index " + std::to_string(c.index[k]) + " (not ascending in [0, " +
             std::to_string(neurons) + "))";
    if (!std::isfinite(c.value[k]) || c.value[k] == 0)
      return "the value " + std::to_string(c.value[k]);
  }
  return "";
}

} // namespace lca
