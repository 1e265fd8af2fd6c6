#pragma once
// Internal to src/io: one reader per dataset format behind one interface, so that load_dataset,
// dataset_sources and dataset_files dispatch on the format in one place (reader_of).
#include "lca/dataset.hpp"
#include "lca/random.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lca::Impl {

/// The png-tiles part of a DatasetIdentity. (Not nested: clang cannot default-construct a nested
/// struct with member initializers inside std::optional.)
struct TilesIdentity {
  std::uint64_t seed = 1;
  double test_photos_fraction = 0.25;
  std::vector<std::pair<std::string, std::int64_t>> photos; ///< each with its tiles kept
};

/// ImageSet::identity of load_dataset as fields: text() is "format=F path=P split=S subset=SEL
/// n=N CxHxW", and for png-tiles " tile_seed=T test_photos_fraction=F photos=P:N,...".
struct DatasetIdentity {
  DataFormat format = DataFormat::fashion_mnist;
  std::string path; ///< absolute, normalised
  Split split = Split::train;
  std::string subset = "all";         ///< "all", "N first" or "N random seed=S"
  std::string shape;                  ///< "n=N CxHxW"
  std::optional<TilesIdentity> tiles; ///< png-tiles only

  std::string text() const;
  /// Reads text() back, except subset, shape and photos (nothing needs them back). Throws
  /// InvalidArgument for text that text() did not write.
  static DatasetIdentity parse(const std::string& text);
};

class DatasetReader {
public:
  virtual ~DatasetReader() = default;
  /// The data read when the spec has no path; "" when the format needs one.
  virtual std::string builtin_path() const { return ""; }
  /// The files the images of spec's split come from; `path` is the spec's or the built-in one.
  virtual std::vector<std::string> sources(const DatasetSpec& spec,
                                           const std::string& path) const = 0;
  /// The files besides `path` whose replacement would change the data (labels, the other split).
  virtual std::vector<std::string> inputs(const DatasetSpec& spec, const std::string& path) const {
    return sources(spec, path);
  }
  /// The images of spec's split that `select` keeps; fills the format's part of `id`.
  virtual ImageSet load(const DatasetSpec& spec, const std::string& path,
                        const ImageSelection& select, DatasetIdentity& id) const = 0;
};

/// The one dispatch from format to reader (dataset.cpp); the readers live in dataset_*.cpp.
const DatasetReader& reader_of(DataFormat format);
/// spec.path, or its reader's built-in data; throws InvalidArgument when there is neither.
std::string required_path(const DatasetSpec& spec);
const DatasetReader& fashion_mnist_reader();
const DatasetReader& mnist_idx_reader();
const DatasetReader& idx_reader();
const DatasetReader& cifar10_reader();
const DatasetReader& png_list_reader();
const DatasetReader& png_tiles_reader();

// ---- helpers shared by the readers --------------------------------------------------------

// Purpose tags for hash_combine, so the streams of one seed are independent.
constexpr std::uint64_t kSubsetStream = 0x5355425345540000ULL;     // "SUBSET"
constexpr std::uint64_t kEpochStream = 0x45504f4348000000ULL;      // "EPOCH"
constexpr std::uint64_t kPhotoSplitStream = 0x50484f544f530000ULL; // "PHOTOS"
constexpr std::uint64_t kTileGridStream = 0x4752494400000000ULL;   // "GRID"
constexpr std::uint64_t kTileOrderStream = 0x54494c4553000000ULL;  // "TILES"
constexpr std::uint64_t kValidationStream = 0x56414c4944000000ULL; // "VALID"

inline float unit(std::uint8_t v) {
  return float(v) / 255.0f;
}

inline std::string shape_of(const ImageSet& s) {
  return "n=" + std::to_string(s.n) + " " + std::to_string(s.channels) + "x" +
         std::to_string(s.height) + "x" + std::to_string(s.width);
}

/// The shortest text that reads back as v (stable in identities).
inline std::string exact(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// Fisher-Yates (Durstenfeld) on the first `count` positions of v: afterwards v[0..count) is a
/// uniform random sample of v in random order (the whole of v is a permutation when count
/// == v.size()).
template <class T> void shuffle_prefix(std::vector<T>& v, std::int64_t count, SplitMix64& rng) {
  const auto n = std::int64_t(v.size());
  for (std::int64_t i = 0; i < count && i + 1 < n; ++i)
    std::swap(v[i], v[i + std::int64_t(rng.bounded(std::uint64_t(n - i)))]);
}

} // namespace lca::Impl
