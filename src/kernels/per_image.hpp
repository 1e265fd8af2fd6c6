#pragma once
// Per-image vectors between host and device (private to the kernel layer): allocated once
// with their host mirror, copied on the execution-space instance (never a global fence).
#include "lca/solver.hpp"

#include <string>
#include <vector>

namespace lca::Impl {

/// A per-image vector of `batch` entries and its host mirror, allocated on the instance.
template <class T, class Device, class Exec>
PerImage<T, Device> per_image(const Exec& space, const std::string& label, int batch) {
  PerImage<T, Device> v;
  v.d = Kokkos::View<T*, Device>(scratch(space, label), batch);
  v.h = Kokkos::create_mirror_view(v.d);
  return v;
}

/// v = host, one small copy on the instance. The mirror is written only after the instance
/// has finished with it: kernels that read v.d run before the caller's next upload returns.
template <class T, class Device, class Exec, class H>
void upload(const Exec& space, const PerImage<T, Device>& v, const std::vector<H>& host) {
  space.fence(); // an earlier copy or kernel may still read the mirror (the instance only)
  for (std::size_t b = 0; b < v.d.extent(0); ++b)
    v.h(b) = T(host[b]);
  Kokkos::deep_copy(space, v.d, v.h);
}

/// The device values on the host once the instance has computed them.
template <class T, class Device, class Exec>
std::vector<double> download(const Exec& space, const PerImage<T, Device>& v) {
  Kokkos::deep_copy(space, v.h, v.d);
  space.fence();
  return std::vector<double>(v.h.data(), v.h.data() + v.h.extent(0));
}

} // namespace lca::Impl
