// PNG data: read_png_list and png_tile_layout, and the readers of the formats png-list (a list
// of equally sized images) and png-tiles (tiles cut from photographs).
#include "dataset_reader.hpp"
#include "lca/error.hpp"
#include "lca/image_png.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <system_error>

namespace lca {
namespace fs = std::filesystem;
using namespace Impl;

namespace {

// png-tiles without a path: inputs/photos-skimage.txt of the source tree this library was built
// from (src/CMakeLists.txt), the natural photographs of Debian's python3-skimage.
constexpr const char* kBuiltinPhotos = LCA_BUILTIN_PHOTOS;

/// The PNG files a list names (relative paths are relative to the list's directory).
std::vector<std::string> png_list_files(const std::string& list_path) {
  std::ifstream list(list_path);
  if (!list)
    throw IoError(list_path + ": cannot open PNG list (" + std::strerror(errno) + ")");
  const fs::path dir = fs::path(list_path).parent_path();
  std::vector<std::string> files;
  for (std::string line; std::getline(list, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    const fs::path p = line.substr(first, line.find_last_not_of(" \t\r") + 1 - first);
    files.push_back((p.is_relative() ? dir / p : p).string());
  }
  if (list.bad())
    throw IoError(list_path + ": read error in PNG list");
  return files;
}

void check_png_shape(const std::string& path, const char* what, int channels, int height,
                     int width) {
  if (channels != 1 && channels != 3)
    throw InvalidArgument(path + ": " + what + " need 1 or 3 channels, got " +
                          std::to_string(channels));
  if (height <= 0 || width <= 0)
    throw InvalidArgument(path + ": " + what + " size must be positive, got " +
                          std::to_string(height) + "x" + std::to_string(width));
}

/// The height x width window at (y0, x0) of png as `channels` planes of [0, 1] floats: equal
/// channels are copied, gray -> RGB replicates (png-list only), RGB -> gray is ITU-R BT.601 luma.
void png_window(const PngImage& png, int y0, int x0, int height, int width, int channels,
                float* out) {
  const std::int64_t plane = std::int64_t(height) * width;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const std::uint8_t* s =
          png.pixels.data() + (std::int64_t(y0 + y) * png.width + x0 + x) * png.channels;
      const std::int64_t p = std::int64_t(y) * width + x;
      if (png.channels == channels)
        for (int ch = 0; ch < channels; ++ch)
          out[ch * plane + p] = unit(s[ch]);
      else if (channels == 3)
        for (int ch = 0; ch < 3; ++ch)
          out[ch * plane + p] = unit(s[0]);
      else
        out[p] = float((0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]) / 255.0);
    }
}

// ---- png-tiles ----------------------------------------------------------------------------

/// A png-tiles source's photographs sorted by path: a directory's *.png files (any case), or a
/// list's entries.
std::vector<std::string> tile_photos(const std::string& path) {
  std::vector<std::string> photos;
  std::error_code ec;
  const bool dir = fs::is_directory(path, ec);
  if (dir) {
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      std::string ext = it->path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      std::error_code not_a_dir;
      if (ext == ".png" && !it->is_directory(not_a_dir))
        photos.push_back(it->path().lexically_normal().string());
    }
    if (ec)
      throw IoError(path + ": cannot list the directory (" + ec.message() + ")");
  } else {
    for (const auto& f : png_list_files(path))
      photos.push_back(fs::path(f).lexically_normal().string());
  }
  if (photos.empty())
    throw IoError(path + ": no PNG photograph " + (dir ? "in the directory" : "in the list"));
  std::sort(photos.begin(), photos.end());
  // A photograph listed twice could land in both splits.
  if (const auto twice = std::adjacent_find(photos.begin(), photos.end()); twice != photos.end())
    throw IoError(path + ": names the photograph " + *twice + " twice");
  return photos;
}

/// Indices (increasing) of the photographs of spec's split among n sorted ones: a permutation
/// seeded by tile_seed puts its first max(1, round(f n)) in the test split.
std::vector<std::size_t> split_photos(std::size_t n, const DatasetSpec& spec,
                                      const std::string& path) {
  const double f = spec.test_photos_fraction;
  if (!(f > 0 && f < 1))
    throw InvalidArgument("png-tiles test photos fraction must be in (0, 1), got " + exact(f));
  if (n < 2)
    throw IoError(path + ": png-tiles needs at least 2 photographs (one per split), found " +
                  std::to_string(n));
  const auto n_test = std::size_t(std::max(1.0, std::round(f * double(n))));
  if (n_test >= n)
    throw InvalidArgument(path + ": a test photos fraction of " + exact(f) + " puts all " +
                          std::to_string(n) + " photographs in the test split");
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  SplitMix64 rng(hash_combine(spec.tile_seed, kPhotoSplitStream));
  shuffle_prefix(order, std::int64_t(n), rng);
  if (spec.split == Split::test)
    order.resize(n_test);
  else
    order.erase(order.begin(), order.begin() + std::ptrdiff_t(n_test));
  std::sort(order.begin(), order.end());
  return order;
}

/// The tiles `keep` (all when empty) of layout, each photograph decoded once; labels are the
/// photograph indices.
ImageSet cut_tiles(const TileLayout& layout, const DatasetSpec& spec,
                   const std::vector<std::int64_t>& keep) {
  ImageSet set;
  set.n = keep.empty() ? std::int64_t(layout.tiles.size()) : std::int64_t(keep.size());
  set.channels = spec.channels;
  set.height = spec.height;
  set.width = spec.width;
  set.pixels.resize(set.n * set.image_size());
  set.labels.resize(set.n);
  const auto tile = [&](std::int64_t i) { return layout.tiles[keep.empty() ? i : keep[i]]; };
  std::vector<std::vector<std::int64_t>> of_photo(layout.photos.size());
  for (std::int64_t i = 0; i < set.n; ++i) {
    set.labels[i] = tile(i).photo;
    of_photo[tile(i).photo].push_back(i);
  }
  for (std::size_t p = 0; p < of_photo.size(); ++p) {
    if (of_photo[p].empty())
      continue;
    const PngImage png = read_png(layout.photos[p]);
    for (const std::int64_t i : of_photo[p]) {
      const TileLayout::Tile t = tile(i);
      if (t.y + set.height > png.height || t.x + set.width > png.width)
        throw IoError(layout.photos[p] + ": the photograph changed while it was read");
      png_window(png, t.y, t.x, set.height, set.width, set.channels, set.image(i));
    }
  }
  return set;
}

/// png_tile_layout of the photographs at `path`.
TileLayout tile_layout(const DatasetSpec& spec, const std::string& path) {
  check_png_shape(path, "png-tiles tiles", spec.channels, spec.height, spec.width);
  const std::vector<std::string> all = tile_photos(path);
  TileLayout layout;
  for (const std::size_t i : split_photos(all.size(), spec, path)) {
    const std::string& photo = all[i];
    const PngImage info = read_png_info(photo);
    if (info.height < spec.height || info.width < spec.width)
      throw IoError(photo + ": the photograph is " + std::to_string(info.height) + "x" +
                    std::to_string(info.width) + ", smaller than a " + std::to_string(spec.height) +
                    "x" + std::to_string(spec.width) + " tile");
    if (info.channels == 1 && spec.channels == 3) // replicated gray would pass for colour
      throw IoError(photo + ": a gray photograph, but 3-channel tiles are asked (png-tiles cuts "
                            "RGB tiles from colour photographs only)");
    SplitMix64 rng(hash_combine(hash_combine(spec.tile_seed, kTileGridStream), i));
    const int y0 = int(rng.bounded(std::uint64_t(info.height % spec.height) + 1));
    const int x0 = int(rng.bounded(std::uint64_t(info.width % spec.width) + 1));
    const int p = int(layout.photos.size());
    layout.photos.push_back(photo);
    for (int y = y0; y + spec.height <= info.height; y += spec.height)
      for (int x = x0; x + spec.width <= info.width; x += spec.width)
        layout.tiles.push_back({p, y, x});
  }
  SplitMix64 rng(hash_combine(spec.tile_seed, kTileOrderStream));
  shuffle_prefix(layout.tiles, std::int64_t(layout.tiles.size()), rng);
  return layout;
}

} // namespace

ImageSet read_png_list(const std::string& list_path, int channels, int height, int width,
                       const ImageSelection& select) {
  check_png_shape(list_path, "PNG list images", channels, height, width);
  std::vector<std::string> files = png_list_files(list_path);
  if (files.empty())
    throw IoError(list_path + ": the PNG list names no files");
  if (select) // only the images kept are decoded
    if (const auto keep = select(std::int64_t(files.size()), "png-list:" + list_path);
        !keep.empty()) {
      std::vector<std::string> kept;
      for (const std::int64_t i : keep)
        kept.push_back(files[std::size_t(i)]);
      files = std::move(kept);
    }

  ImageSet set;
  set.n = std::int64_t(files.size());
  set.channels = channels;
  set.height = height;
  set.width = width;
  set.labels.assign(set.n, -1);
  for (std::int64_t i = 0; i < set.n; ++i) {
    const PngImage png = read_png(files[i], height, width);
    // Allocated once the first image has proved that height x width (command-line values) is
    // real, not before: a typo must not allocate n * height * width floats up front.
    if (i == 0)
      set.pixels.reserve(set.n * set.image_size());
    set.pixels.resize((i + 1) * set.image_size());
    png_window(png, 0, 0, height, width, channels, set.image(i));
  }
  set.identity = "png-list:" + list_path + " " + shape_of(set);
  return set;
}

TileLayout png_tile_layout(const DatasetSpec& spec) {
  return tile_layout(spec, required_path(spec));
}

namespace Impl {
namespace {

/// png-list: a list file naming images of one size.
class PngListReader : public DatasetReader {
public:
  std::vector<std::string> sources(const DatasetSpec&, const std::string& path) const override {
    return png_list_files(path);
  }
  ImageSet load(const DatasetSpec& spec, const std::string& path, const ImageSelection& select,
                DatasetIdentity&) const override {
    return read_png_list(path, spec.channels, spec.height, spec.width, select);
  }
};

/// png-tiles: a directory or list of photographs, split between train and test by photograph.
class PngTilesReader : public DatasetReader {
public:
  std::string builtin_path() const override { return kBuiltinPhotos; }
  std::vector<std::string> sources(const DatasetSpec& spec,
                                   const std::string& path) const override {
    const std::vector<std::string> all = tile_photos(path);
    std::vector<std::string> photos;
    for (const std::size_t i : split_photos(all.size(), spec, path))
      photos.push_back(all[i]);
    return photos;
  }
  /// The photographs of both splits, so that no output replaces a test photograph.
  std::vector<std::string> inputs(const DatasetSpec&, const std::string& path) const override {
    return tile_photos(path);
  }
  ImageSet load(const DatasetSpec& spec, const std::string& path, const ImageSelection& select,
                DatasetIdentity& id) const override {
    const TileLayout layout = tile_layout(spec, path);
    const auto n = std::int64_t(layout.tiles.size());
    if (spec.subset > n)
      throw InvalidArgument(path + ": asked " + std::to_string(spec.subset) + " tiles, the " +
                            std::to_string(layout.photos.size()) + " " + to_string(spec.split) +
                            " photographs hold " + std::to_string(n));
    ImageSet set = cut_tiles(layout, spec, select(n, path));
    TilesIdentity tiles{spec.tile_seed, spec.test_photos_fraction, {}};
    for (const std::string& photo : layout.photos)
      tiles.photos.emplace_back(photo, 0);
    for (const int p : set.labels)
      ++tiles.photos[std::size_t(p)].second;
    id.tiles = std::move(tiles);
    return set;
  }
};

} // namespace

const DatasetReader& png_list_reader() {
  static const PngListReader reader;
  return reader;
}
const DatasetReader& png_tiles_reader() {
  static const PngTilesReader reader;
  return reader;
}

} // namespace Impl
} // namespace lca
