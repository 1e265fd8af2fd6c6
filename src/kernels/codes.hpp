#pragma once
// Sparse codes in and out of the solver's activity (warm starts, private to the kernel layer):
// on the host side of a_, image b's rows b * npos .. (b + 1) * npos - 1.
#include "lca/error.hpp"
#include "lca/sparse_code.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lca::Impl {

/// a_h = the codes (zero where codes[b] is null), each checked first.
template <class HostMatrix>
void load_codes(const std::vector<const SparseCode*>& codes, int npos, int nf,
                const HostMatrix& a_h) {
  using Scalar = typename HostMatrix::value_type;
  Kokkos::deep_copy(a_h, Scalar(0));
  for (std::size_t b = 0; b < codes.size(); ++b) {
    if (!codes[b])
      continue;
    const SparseCode& c = *codes[b];
    if (const std::string p = lca::problem(c, std::int64_t(npos) * nf); !p.empty())
      throw InvalidArgument("warm_start: the code of image " + std::to_string(b) + " has " + p);
    for (std::size_t i = 0; i < c.index.size(); ++i) {
      const std::int32_t k = c.index[i];
      a_h(std::int64_t(b) * npos + k / nf, k % nf) = Scalar(c.value[i]);
    }
  }
}

/// The nonzeros of each of `batch` images' codes in a_h, in index order.
template <class HostMatrix>
std::vector<SparseCode> sparse_codes(const HostMatrix& a_h, int batch, int npos, int nf) {
  using Scalar = typename HostMatrix::value_type;
  std::vector<SparseCode> out(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b)
    for (int p = 0; p < npos; ++p)
      for (int m = 0; m < nf; ++m)
        if (const Scalar a = a_h(std::int64_t(b) * npos + p, m); a != Scalar(0)) {
          out[std::size_t(b)].index.push_back(p * nf + m);
          out[std::size_t(b)].value.push_back(float(a));
        }
  return out;
}

} // namespace lca::Impl
