#pragma once
// Kokkos Tools callbacks that record every kernel launched in a scope (label and device id):
// which kernels ran, and on which execution space.
#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace lca::test {

/// Records the label and device id of every kernel launched while it lives; the callbacks
/// that were set before come back after.
class KernelRecorder {
public:
  struct Launch {
    std::string label;
    std::uint32_t device;
  };
  KernelRecorder() : saved_(Kokkos::Tools::Experimental::get_callbacks()) {
    launches().clear();
    Kokkos::Tools::Experimental::set_begin_parallel_for_callback(&record);
    Kokkos::Tools::Experimental::set_begin_parallel_reduce_callback(&record);
    Kokkos::Tools::Experimental::set_begin_parallel_scan_callback(&record);
  }
  ~KernelRecorder() { Kokkos::Tools::Experimental::set_callbacks(saved_); }
  KernelRecorder(const KernelRecorder&) = delete;
  KernelRecorder& operator=(const KernelRecorder&) = delete;
  static std::vector<Launch>& launches() {
    static std::vector<Launch> v;
    return v;
  }

private:
  static void record(const char* label, std::uint32_t device, std::uint64_t* id) {
    launches().push_back({label, device});
    *id = launches().size();
  }
  Kokkos::Tools::Experimental::EventSet saved_;
};

} // namespace lca::test
