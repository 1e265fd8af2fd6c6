#pragma once
// Test data that is training data measures memorisation, not generalisation: lca-scaling run
// and lca-denoise refuse it unless --allow-train-as-test, and then label every output. A few
// repeats are tolerated with a note: an official split may repeat some training images, and
// photo tiles can coincide (a saturated sky is the same in any photograph).
#include "app_main.hpp"
#include "no_overwrite.hpp"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

namespace lca::app {

/// The share of test images (or files) that may be training ones, with a note.
constexpr double kToleratedTrainAsTest = 0.01;

/// What the refusal says: e.g. {"the test set is the training data", "images", "give ..."}.
struct TrainAsTest {
  std::string what, unit, remedy;
};

/// Collective. `shared` of the `total` test images (or files) are training ones, as rank 0
/// counted them. Returns true when the test data is training data and `allow`
/// (--allow-train-as-test) lets it through: the outputs must say so. Otherwise throws
/// UsageError on every rank; up to kToleratedTrainAsTest of them pass with a note.
inline bool test_is_training(const char* app, const TrainAsTest& t, std::int64_t shared,
                             std::int64_t total, bool allow) {
  std::int64_t counts[2] = {shared, total};
  mpi::check(MPI_Bcast(counts, 2, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  if (counts[0] == 0)
    return false;
  const std::string of =
      std::to_string(counts[0]) + " of " + std::to_string(counts[1]) + " " + t.unit;
  if (double(counts[0]) <= kToleratedTrainAsTest * double(counts[1])) {
    if (rank() == 0)
      std::cout << app << ": note: " << of << " of the test data are also training " << t.unit
                << " (up to 1 % is tolerated)" << std::endl;
    return false;
  }
  if (!allow)
    throw UsageError(t.what + ": " + of + " are training " + t.unit + "; " + t.remedy +
                     ", or pass --allow-train-as-test");
  return true;
}

inline bool same_content(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::array<char, 1 << 16> ba, bb;
  while (fa && fb) {
    fa.read(ba.data(), ba.size());
    fb.read(bb.data(), bb.size());
    if (fa.gcount() != fb.gcount() || !std::equal(ba.begin(), ba.begin() + fa.gcount(), bb.begin()))
      return false;
  }
  return fa.eof() && fb.eof();
}

/// How many of `files` are one of `training`: the same file (same_file) or the same bytes.
inline std::int64_t shared_files(const std::vector<std::string>& files,
                                 const std::vector<std::string>& training) {
  namespace fs = std::filesystem;
  std::multimap<std::uintmax_t, std::string> by_size; // only equal sizes can be equal files
  for (const auto& t : training) {
    std::error_code ec;
    if (const auto size = fs::file_size(t, ec); !ec)
      by_size.emplace(size, t);
  }
  std::int64_t shared = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec)
      continue;
    const auto [first, last] = by_size.equal_range(size);
    shared += std::any_of(first, last, [&](const auto& t) {
      return same_file(f, t.second) || same_content(f, t.second);
    });
  }
  return shared;
}

} // namespace lca::app
