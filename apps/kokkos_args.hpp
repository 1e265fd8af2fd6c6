#pragma once
// Kokkos' flags apart from a program's own (the apps and the benchmarks).
#include <cstring>
#include <vector>

namespace lca::app {

/// argv split in two: Kokkos gets only its own --kokkos-* flags (Kokkos 3.4 prints its whole
/// help for a plain --help, and would read flags of the app), the app gets the rest.
struct SplitArgs {
  std::vector<char*> kokkos, app; ///< each starts with argv[0] and ends with nullptr
  bool kokkos_help = false;

  SplitArgs(int argc, char** argv, bool print_kokkos_help) {
    kokkos.push_back(argv[0]);
    app.push_back(argv[0]);
    for (int i = 1; i < argc; ++i) {
      const bool ours = std::strncmp(argv[i], "--kokkos-", 9) == 0;
      if (ours && std::strcmp(argv[i], "--kokkos-help") == 0) {
        kokkos_help = true;
        if (!print_kokkos_help) // once per job
          continue;
      }
      (ours ? kokkos : app).push_back(argv[i]);
    }
    kokkos.push_back(nullptr);
    app.push_back(nullptr);
  }
  int kokkos_argc() const { return int(kokkos.size()) - 1; }
  int app_argc() const { return int(app.size()) - 1; }
};

} // namespace lca::app
