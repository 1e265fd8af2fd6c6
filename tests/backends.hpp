#pragma once
// Every kernel test is written once and instantiated for each (precision, device, layout) the
// library compiles (LCA_INSTANTIATE in lca/core.hpp): both precisions on every backend in its
// own layout, and the other layout (LayoutLeft, the GPU's, on the CPU) once per backend.
#include "lca/core.hpp"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace lca::test {

template <class S, class D, class L = typename D::execution_space::array_layout> struct Config {
  using Scalar = S;
  using Device = D;
  using Layout = L;
};

using Configs = ::testing::Types<
    Config<float, DefaultDevice>, Config<double, DefaultDevice>,
    Config<float, DefaultDevice, OtherLayout<DefaultDevice>>
#if LCA_HAS_SECOND_SERIAL
    ,
    Config<float, Kokkos::Serial::device_type>, Config<double, Kokkos::Serial::device_type>,
    Config<double, Kokkos::Serial::device_type, OtherLayout<Kokkos::Serial::device_type>>
#endif
    >;

/// e.g. float_OpenMP, double_Serial_LayoutLeft (the layout is named when not the default).
struct ConfigNames {
  template <class T> static std::string GetName(int) {
    using Exec = typename T::Device::execution_space;
    std::string name = std::is_same<typename T::Scalar, float>::value ? "float_" : "double_";
    name += Exec::name();
    if (!std::is_same<typename T::Layout, typename Exec::array_layout>::value)
      name += std::is_same<typename T::Layout, Kokkos::LayoutLeft>::value ? "_LayoutLeft"
                                                                          : "_LayoutRight";
    return name;
  }
};

} // namespace lca::test
