#pragma once
// Portable pseudo-random numbers: the same sequence on every platform, compiler and standard
// library (std::shuffle and the std:: distributions are implementation-defined, so results
// would differ between builds and a resumed run could not reproduce its epochs).
#include "lca/error.hpp"

#include <cstdint>

namespace lca {

/// SplitMix64's output function (Stafford's Mix13): a bijective, well-mixing 64-bit hash.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Steele, Lea & Flood's SplitMix64 (the generator that seeds xoshiro): small, fast, and
/// passes BigCrush; ample for shuffles, subsets and noise.
struct SplitMix64 {
  static constexpr std::uint64_t kGamma = 0x9e3779b97f4a7c15ULL; ///< golden-ratio increment

  explicit SplitMix64(std::uint64_t seed) : state(seed) {}

  std::uint64_t next() { return mix64(state += kGamma); }

  /// Uniform double in [0, 1) with all 53 mantissa bits random.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

  /// Uniform integer in [0, n), unbiased: outputs below 2^64 mod n are rejected so that every
  /// residue is hit by the same number of 64-bit values.
  std::uint64_t bounded(std::uint64_t n) {
    if (n == 0)
      throw InvalidArgument("SplitMix64::bounded: the range size n must be positive");
    const std::uint64_t threshold = (0 - n) % n; // == 2^64 mod n
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold)
        return r % n;
    }
  }

  std::uint64_t state;
};

/// Derives an independent stream seed from a seed and a purpose/epoch/index. Injective in each
/// argument when the other is fixed, and not symmetric, so (seed, epoch) pairs never collide.
inline std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b) {
  return mix64(mix64(a) ^ (b + SplitMix64::kGamma));
}

} // namespace lca
