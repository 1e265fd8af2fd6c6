#pragma once
// Overlaps of two atoms of the convolutional dictionary (host, double), private to the kernel
// layer: the Gram entries <phi_(y,x,f), phi_(y+dy,x+dx,g)> that the exact support solve
// (support.hpp) factorises and coordinate descent (cd.hpp) reads. Atom (y, x) covers image rows
// s*y - p .. s*y - p + k - 1; the image edge clips it.
#include "lca/core.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace lca::Impl {

/// The host space that builds the overlaps (and runs the support solve's factorisations):
/// Device's own when the host can reach its memory (Serial stays serial), else the default
/// host space.
template <class Device>
using HostExec = std::conditional_t<
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Device::memory_space>::accessible,
    typename Device::execution_space, Kokkos::DefaultHostExecutionSpace>;

/// dict = the dictionary matrix d (c*k*k, nf) as (nf, c*k*k) row-major doubles; false, and
/// dict untouched, when it already holds exactly those values (float to double is exact), so
/// that what was built from it can be kept. The caller fences d's instance first.
template <class Matrix> bool refresh_dictionary(const Matrix& d, std::vector<double>& dict) {
  const auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d);
  const int nf = int(h.extent(1)), patch = int(h.extent(0));
  bool same = dict.size() == std::size_t(nf) * patch;
  for (int m = 0; same && m < nf; ++m)
    for (int e = 0; same && e < patch; ++e)
      same = dict[std::size_t(m) * patch + e] == double(h(e, m));
  if (same)
    return false;
  dict.resize(std::size_t(nf) * patch);
  for (int m = 0; m < nf; ++m)
    for (int e = 0; e < patch; ++e)
      dict[std::size_t(m) * patch + e] = double(h(e, m));
  return true;
}

/// Kernel rows [lo, hi) of atom (y, x) that atom (y + dy, x + dx) also covers: the offset's
/// overlap, within the image (rows 0 .. extent - 1) when clip.
struct KernelRange {
  int lo, hi;
};
inline KernelRange overlap_rows(const Geometry& g, int y, int dy, int extent, bool clip) {
  const int k = g.kernel, s = g.stride, p = g.pad();
  KernelRange r{std::max(0, s * dy), std::min(k, k + s * dy)};
  if (clip)
    r.lo = std::max(r.lo, p - s * y), r.hi = std::min(r.hi, extent + p - s * y);
  return r;
}

/// <phi_f, phi_g shifted by (dy, dx) positions> over kernel rows ry and columns rx of phi_f;
/// dict is (nf, c*k*k) row-major.
inline double atom_product(const Geometry& g, const double* dict, int f, int gf, int dy, int dx,
                           KernelRange ry, KernelRange rx) {
  const int k = g.kernel, s = g.stride;
  const double* a = dict + std::size_t(f) * g.patch();
  const double* b = dict + std::size_t(gf) * g.patch();
  const int shift = s * dy * k + s * dx;
  double sum = 0;
  for (int ch = 0; ch < g.channels; ++ch)
    for (int ky = ry.lo; ky < ry.hi; ++ky) {
      const int row = (ch * k + ky) * k;
      for (int kx = rx.lo; kx < rx.hi; ++kx)
        sum += a[row + kx] * b[row + kx - shift];
    }
  return sum;
}

} // namespace lca::Impl
