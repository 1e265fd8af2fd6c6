// The dataset layer: the format dispatch behind load_dataset, dataset_sources and dataset_files
// (the readers are in dataset_idx.cpp, dataset_cifar10.cpp, dataset_png.cpp), the identity of
// a loaded set, subsets, hold-outs, normalisation and epoch order.
#include "dataset_reader.hpp"
#include "lca/error.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <ostream>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace lca {
namespace fs = std::filesystem;
using namespace Impl;

const char* to_string(DataFormat f) {
  return name_of(kDataFormatNames, f);
}
std::ostream& operator<<(std::ostream& os, DataFormat f) {
  return os << to_string(f);
}
DataFormat parse_data_format(const std::string& text) {
  if (const auto f = value_of(kDataFormatNames, text))
    return *f;
  throw InvalidArgument("unknown dataset format '" + text +
                        "' (expected fashion-mnist, mnist-idx, idx, cifar10, png-list or "
                        "png-tiles)");
}

const char* to_string(Split s) {
  return name_of(kSplitNames, s);
}
std::ostream& operator<<(std::ostream& os, Split s) {
  return os << to_string(s);
}
Split parse_split(const std::string& text) {
  if (const auto s = value_of(kSplitNames, text))
    return *s;
  throw InvalidArgument("dataset split must be train or test, got '" + text + "'");
}

const char* to_string(SubsetMode m) {
  return name_of(kSubsetModeNames, m);
}
std::ostream& operator<<(std::ostream& os, SubsetMode m) {
  return os << to_string(m);
}
SubsetMode parse_subset_mode(const std::string& text) {
  if (const auto m = value_of(kSubsetModeNames, text))
    return *m;
  throw InvalidArgument("dataset subset mode must be first or random, got '" + text + "'");
}

namespace Impl {

const DatasetReader& reader_of(DataFormat format) {
  switch (format) {
  case DataFormat::fashion_mnist:
    return fashion_mnist_reader();
  case DataFormat::mnist_idx:
    return mnist_idx_reader();
  case DataFormat::idx:
    return idx_reader();
  case DataFormat::cifar10:
    return cifar10_reader();
  case DataFormat::png_list:
    return png_list_reader();
  case DataFormat::png_tiles:
    return png_tiles_reader();
  }
  throw InvalidArgument("unknown dataset format " + std::to_string(int(format)));
}

std::string required_path(const DatasetSpec& spec) {
  std::string path = spec.path.empty() ? reader_of(spec.format).builtin_path() : spec.path;
  if (path.empty())
    throw InvalidArgument("dataset format '" + std::string(to_string(spec.format)) +
                          "' needs a path");
  return path;
}

std::string DatasetIdentity::text() const {
  std::string t = "format=" + std::string(to_string(format)) + " path=" + path +
                  " split=" + to_string(split) + " subset=" + subset + " " + shape;
  if (tiles) {
    t += " tile_seed=" + std::to_string(tiles->seed) +
         " test_photos_fraction=" + exact(tiles->test_photos_fraction) + " photos=";
    for (std::size_t p = 0; p < tiles->photos.size(); ++p)
      t += (p ? "," : "") + tiles->photos[p].first + ":" + std::to_string(tiles->photos[p].second);
  }
  return t;
}

DatasetIdentity DatasetIdentity::parse(const std::string& text) {
  // The path may hold spaces, so it ends at " split=".
  const auto field = [&](const std::string& key, const std::string& end) {
    const auto at = text.find(key);
    if (at == std::string::npos)
      throw InvalidArgument("not a dataset identity of load_dataset: '" + text + "'");
    const auto from = at + key.size();
    return text.substr(from, text.find(end, from) - from);
  };
  if (text.rfind("format=", 0) != 0)
    throw InvalidArgument("not a dataset identity of load_dataset: '" + text + "'");
  DatasetIdentity id;
  id.format = parse_data_format(field("format=", " "));
  id.path = field(" path=", " split=");
  id.split = parse_split(field(" split=", " "));
  if (id.format == DataFormat::png_tiles) {
    const std::string seed = field(" tile_seed=", " "), f = field(" test_photos_fraction=", " ");
    TilesIdentity& t = id.tiles.emplace();
    const auto s = std::from_chars(seed.data(), seed.data() + seed.size(), t.seed);
    const auto r = std::from_chars(f.data(), f.data() + f.size(), t.test_photos_fraction);
    if (s.ec != std::errc() || r.ec != std::errc())
      throw InvalidArgument("not a png-tiles identity of load_dataset: '" + text + "'");
  }
  return id;
}

} // namespace Impl

ImageSet load_dataset(const DatasetSpec& spec) {
  if (spec.subset < 0)
    throw InvalidArgument("dataset subset must be >= 0 (0 = all), got " +
                          std::to_string(spec.subset));
  const DatasetReader& reader = reader_of(spec.format);
  const std::string path = required_path(spec);

  // The subset is chosen from the image count alone, so the readers read only those images
  // (a --subset 64 of Fashion-MNIST no longer decodes all 60,000).
  const ImageSelection select = [&](std::int64_t n, const std::string& source) {
    std::vector<std::int64_t> keep;
    if (spec.subset == 0)
      return keep; // all
    if (spec.subset > n)
      throw InvalidArgument("dataset subset " + std::to_string(spec.subset) + " exceeds the " +
                            std::to_string(n) + " images of " + source);
    keep.resize(std::size_t(n));
    std::iota(keep.begin(), keep.end(), std::int64_t(0));
    if (spec.subset_mode == SubsetMode::random) {
      SplitMix64 rng(hash_combine(spec.seed, kSubsetStream));
      shuffle_prefix(keep, spec.subset, rng);
      std::sort(keep.begin(), keep.begin() + spec.subset); // a subset, in file order
    }
    keep.resize(std::size_t(spec.subset));
    return keep;
  };
  DatasetIdentity id;
  ImageSet set = reader.load(spec, path, select, id);

  // The identity describes the data itself: the seed only matters for a random subset.
  id.format = spec.format;
  id.path = fs::absolute(path).lexically_normal().string();
  id.split = spec.split;
  if (spec.subset > 0) {
    id.subset = std::to_string(spec.subset) + " " + to_string(spec.subset_mode);
    if (spec.subset_mode == SubsetMode::random)
      id.subset += " seed=" + std::to_string(spec.seed);
  }
  id.shape = shape_of(set);
  set.identity = id.text();
  return set;
}

std::vector<std::string> dataset_files(const DatasetSpec& spec) {
  std::vector<std::string> files;
  try {
    const std::string path = required_path(spec);
    files.push_back(path);
    for (const auto& f : reader_of(spec.format).inputs(spec, path))
      if (f != path)
        files.push_back(f);
  } catch (const Error&) {
    // No path, or a missing or unreadable input: load_dataset reports it; what was found so far
    // is listed.
  }
  return files;
}

std::vector<std::string> dataset_sources(const DatasetSpec& spec) {
  return reader_of(spec.format).sources(spec, required_path(spec));
}

DatasetSpec dataset_spec_of_identity(const std::string& identity) {
  const DatasetIdentity id = DatasetIdentity::parse(identity);
  DatasetSpec spec;
  spec.format = id.format;
  spec.path = id.path;
  spec.split = id.split;
  if (id.tiles)
    spec.tile_seed = id.tiles->seed, spec.test_photos_fraction = id.tiles->test_photos_fraction;
  return spec;
}

std::int64_t shared_images(const ImageSet& train, const ImageSet& test) {
  if (train.channels != test.channels || train.height != test.height || train.width != test.width)
    return 0;
  const std::int64_t m = train.image_size();
  const auto hash = [m](const float* x) {
    std::uint64_t h = 0;
    for (std::int64_t j = 0; j < m; ++j) {
      std::uint32_t bits;
      std::memcpy(&bits, x + j, sizeof bits);
      h = hash_combine(h, bits);
    }
    return h;
  };
  std::unordered_multimap<std::uint64_t, std::int64_t> train_images;
  train_images.reserve(std::size_t(train.n));
  for (std::int64_t i = 0; i < train.n; ++i)
    train_images.emplace(hash(train.image(i)), i);
  std::int64_t shared = 0;
  for (std::int64_t j = 0; j < test.n; ++j) {
    const float* x = test.image(j);
    const auto [first, last] = train_images.equal_range(hash(x));
    shared += std::any_of(first, last, [&](const auto& entry) {
      return std::equal(x, x + m, train.image(entry.second));
    });
  }
  return shared;
}

std::int64_t normalize_images(ImageSet& set) {
  // Below ~1e-6 of the mean the spread is float rounding, not content: dividing by it would
  // blow rounding noise up to a unit-variance image.
  constexpr double kConstantRelStd = 1e-6;
  const std::int64_t m = set.image_size();
  std::int64_t constant = 0;
  for (std::int64_t i = 0; i < set.n; ++i) {
    float* x = set.image(i);
    double sum = 0.0;
    for (std::int64_t j = 0; j < m; ++j) {
      if (!std::isfinite(x[j]))
        throw NumericalError("normalize_images: image " + std::to_string(i) +
                             (set.identity.empty() ? "" : " of " + set.identity) +
                             " has a non-finite pixel (" + std::to_string(x[j]) + ")");
      sum += x[j];
    }
    const double mean = sum / double(m);
    double squares = 0.0; // two-pass: no cancellation for bright, low-contrast images
    for (std::int64_t j = 0; j < m; ++j)
      squares += (x[j] - mean) * (x[j] - mean);
    const double sd = std::sqrt(squares / double(m));
    if (sd <= kConstantRelStd * std::fabs(mean)) {
      std::fill(x, x + m, 0.0f);
      ++constant;
      continue;
    }
    for (std::int64_t j = 0; j < m; ++j)
      x[j] = float((x[j] - mean) / sd);
  }
  return constant;
}

ImageSet hold_out(ImageSet& set, std::int64_t count, std::uint64_t seed) {
  if (count < 1 || count >= set.n)
    throw InvalidArgument("validation images: " + std::to_string(count) + " of a training set of " +
                          std::to_string(set.n) + " (give 1 to n - 1, leaving images to train on)");
  std::vector<std::int64_t> order(set.n);
  std::iota(order.begin(), order.end(), std::int64_t(0));
  SplitMix64 rng(hash_combine(seed, kValidationStream));
  shuffle_prefix(order, count, rng);
  std::vector<char> held(set.n, 0);
  for (std::int64_t i = 0; i < count; ++i)
    held[order[i]] = 1;
  ImageSet parts[2]; // [0]: kept for training, [1]: held out
  for (ImageSet& p : parts)
    p.channels = set.channels, p.height = set.height, p.width = set.width;
  const std::int64_t size = set.image_size();
  for (std::int64_t i = 0; i < set.n; ++i) {
    ImageSet& p = parts[held[i]];
    p.pixels.insert(p.pixels.end(), set.image(i), set.image(i) + size);
    if (!set.labels.empty())
      p.labels.push_back(set.labels[i]);
    ++p.n;
  }
  const std::string how =
      std::to_string(count) + " validation images held out (seed " + std::to_string(seed) + ")";
  parts[0].identity = set.identity + " | minus " + how;
  parts[1].identity = set.identity + " | " + how;
  set = std::move(parts[0]);
  return std::move(parts[1]);
}

std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                      bool shuffle) {
  if (n < 0)
    throw InvalidArgument("epoch_order: n must be >= 0, got " + std::to_string(n));
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), std::int64_t(0));
  if (shuffle) {
    SplitMix64 rng(hash_combine(hash_combine(seed, kEpochStream), std::uint64_t(epoch)));
    shuffle_prefix(order, n, rng);
  }
  return order;
}

} // namespace lca
