#pragma once
// A code kept between solves (warm starts, checkpoints): no Kokkos, so the io layer can hold it.
#include <cstdint>
#include <vector>

namespace lca {

/// One image's code as its nonzero entries: index pos * nf + feature within the image (pos the
/// code position, row-major over the out_h x out_w grid), ascending, and the value. About 3 %
/// of a dense code at the study's sparsities.
struct SparseCode {
  std::vector<std::int32_t> index;
  std::vector<float> value;
};

} // namespace lca
