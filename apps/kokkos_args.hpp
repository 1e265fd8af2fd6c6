#pragma once
// Kokkos' flags apart from a program's own (the apps and the benchmarks).
#include <Kokkos_Core.hpp>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace lca::app {

/// The thread-count flag: Kokkos 3.7 renamed --kokkos-threads=N to --kokkos-num-threads=N, and
/// Kokkos 4.3 dropped the old name (it is ignored with a warning). Both spellings
/// work here on every version: the one this Kokkos does not know is passed under the other.
#if KOKKOS_VERSION >= 30700
constexpr const char* kKokkosThreadsFlag = "--kokkos-num-threads=";
constexpr const char* kKokkosThreadsOtherName = "--kokkos-threads=";
#else
constexpr const char* kKokkosThreadsFlag = "--kokkos-threads=";
constexpr const char* kKokkosThreadsOtherName = "--kokkos-num-threads=";
#endif

/// argv split in two: Kokkos gets only its own --kokkos-* flags (Kokkos 3.4 prints its whole
/// help for a plain --help, and would read flags of the app), the app gets the rest.
struct SplitArgs {
  std::vector<char*> kokkos, app; ///< each starts with argv[0] and ends with nullptr
  bool kokkos_help = false;

  SplitArgs(int argc, char** argv, bool print_kokkos_help) {
    kokkos.push_back(argv[0]);
    app.push_back(argv[0]);
    const std::size_t other = std::strlen(kKokkosThreadsOtherName);
    for (int i = 1; i < argc; ++i) {
      const bool ours = std::strncmp(argv[i], "--kokkos-", 9) == 0;
      if (ours && std::strcmp(argv[i], "--kokkos-help") == 0) {
        kokkos_help = true;
        if (!print_kokkos_help) // once per job
          continue;
      }
      if (ours && std::strncmp(argv[i], kKokkosThreadsOtherName, other) == 0) {
        renamed_.push_back(kKokkosThreadsFlag + std::string(argv[i] + other));
        kokkos.push_back(renamed_.back().data());
        continue;
      }
      (ours ? kokkos : app).push_back(argv[i]);
    }
    kokkos.push_back(nullptr);
    app.push_back(nullptr);
  }
  SplitArgs(const SplitArgs&) = delete; // kokkos may point into renamed_
  SplitArgs& operator=(const SplitArgs&) = delete;
  int kokkos_argc() const { return int(kokkos.size()) - 1; }
  int app_argc() const { return int(app.size()) - 1; }

private:
  std::deque<std::string> renamed_; ///< flags passed under the other name (stable addresses)
};

} // namespace lca::app
