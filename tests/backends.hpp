#pragma once
// Every kernel test is written once and instantiated for each (precision, backend) pair.
#include "lca/core.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace lca::test {

template <class S, class Sp> struct Config {
  using Scalar = S;
  using Space = Sp;
  /// Tolerance relative to the data's scale: float kernels to ~1e-5, double to ~1e-12.
  static constexpr double tol = std::is_same<S, float>::value ? 2e-5 : 1e-11;
};

using Configs = ::testing::Types<Config<float, Kokkos::DefaultExecutionSpace>,
                                 Config<double, Kokkos::DefaultExecutionSpace>
#if LCA_HAS_SECOND_SERIAL
                                 ,
                                 Config<float, Kokkos::Serial>, Config<double, Kokkos::Serial>
#endif
                                 >;

struct ConfigNames {
  template <class T> static std::string GetName(int) {
    return std::string(std::is_same<typename T::Scalar, float>::value ? "float_" : "double_") +
           T::Space::name();
  }
};

} // namespace lca::test
