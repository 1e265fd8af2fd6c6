#include "lca/dataset.hpp"

#include "lca/error.hpp"
#include "lca/image_png.hpp"
#include "lca/random.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace lca {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
// png-tiles without a path: inputs/photos-skimage.txt of the source tree this library was built
// from (src/CMakeLists.txt), the natural photographs of Debian's python3-skimage.
constexpr const char* kBuiltinPhotos = LCA_BUILTIN_PHOTOS;

// Purpose tags for hash_combine, so the streams of one seed are independent.
constexpr std::uint64_t kSubsetStream = 0x5355425345540000ULL;     // "SUBSET"
constexpr std::uint64_t kEpochStream = 0x45504f4348000000ULL;      // "EPOCH"
constexpr std::uint64_t kPhotoSplitStream = 0x50484f544f530000ULL; // "PHOTOS"
constexpr std::uint64_t kTileGridStream = 0x4752494400000000ULL;   // "GRID"
constexpr std::uint64_t kTileOrderStream = 0x54494c4553000000ULL;  // "TILES"
constexpr std::uint64_t kValidationStream = 0x56414c4944000000ULL; // "VALID"

float unit(std::uint8_t v) {
  return float(v) / 255.0f;
}

std::string shape_of(const ImageSet& s) {
  return "n=" + std::to_string(s.n) + " " + std::to_string(s.channels) + "x" +
         std::to_string(s.height) + "x" + std::to_string(s.width);
}

/// The shortest text that reads back as v (stable in identities).
std::string exact(double v) {
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

// ---- CIFAR-10 -----------------------------------------------------------------------------

constexpr std::int64_t kCifarPixels = 3 * 32 * 32;
constexpr std::int64_t kCifarRecord = 1 + kCifarPixels;

// ---- IDX ----------------------------------------------------------------------------------

constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, rank 3
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, rank 1
constexpr std::uint64_t kIdxMaxImagePixels = 1u << 24; // h*w beyond this is a corrupt header

/// A file read through zlib: gzread decompresses gzip (magic 1f 8b) and passes any other
/// file through unchanged, so one path serves MNIST's .gz and plain distributions.
class GzInput {
public:
  explicit GzInput(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_)
      throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  }
  GzInput(const GzInput&) = delete;
  GzInput& operator=(const GzInput&) = delete;
  ~GzInput() { gzclose(f_); }

  /// Reads up to `size` bytes; fewer only at end of file.
  std::size_t read(void* buf, std::size_t size) {
    std::size_t got = 0;
    while (got < size) {
      const unsigned chunk = unsigned(std::min<std::size_t>(size - got, 1u << 30));
      const int r = gzread(f_, static_cast<char*>(buf) + got, chunk);
      if (r < 0) {
        int code = 0;
        throw IoError(path_ + ": read error (" + gzerror(f_, &code) + ")");
      }
      if (r == 0)
        break;
      got += std::size_t(r);
    }
    return got;
  }

  /// Moves forward to byte `offset` of the (decompressed) data: a seek in a plain file, a
  /// decompress-and-discard in a gzip one. Only forward.
  void skip_to(std::uint64_t offset) {
    const z_off_t at = gztell(f_);
    if (at < 0 || std::uint64_t(at) > offset)
      throw IoError(path_ + ": cannot seek backwards in the file");
    if (std::uint64_t(at) != offset && gzseek(f_, z_off_t(offset), SEEK_SET) < 0) {
      int code = 0;
      throw IoError(path_ + ": seek error (" + gzerror(f_, &code) + ")");
    }
  }

  /// Reads exactly `count` bytes at `offset` (forward of the current position).
  void read_at(std::uint64_t offset, void* buf, std::size_t count, std::uint64_t promised) {
    skip_to(offset);
    if (read(buf, count) != count)
      throw IoError(path_ + ": truncated: the IDX header promises " + std::to_string(promised) +
                    " data bytes but the file ends before byte " + std::to_string(offset + count));
  }

  /// For a plain (not gzip) regular file, checks its size against the header without reading
  /// the data (a partial read cannot see a truncated or overlong file otherwise).
  void check_plain_size(std::uint64_t header_bytes, std::uint64_t count) {
    std::error_code ec;
    if (!gzdirect(f_) || !fs::is_regular_file(path_, ec))
      return;
    const std::uint64_t size = fs::file_size(path_, ec);
    if (ec)
      return;
    if (size < header_bytes + count)
      throw IoError(path_ + ": truncated: the IDX header promises " + std::to_string(count) +
                    " data bytes but the file ends after " + std::to_string(size - header_bytes));
    if (size > header_bytes + count)
      throw IoError(path_ + ": more data than the IDX header describes (" + std::to_string(count) +
                    " bytes); not an IDX file?");
  }

  /// IDX header words are big-endian.
  std::uint32_t read_be32() {
    unsigned char b[4];
    if (read(b, 4) != 4)
      throw IoError(path_ + ": truncated IDX header");
    return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | b[3];
  }

  void expect_magic(std::uint32_t magic, const char* what) {
    const std::uint32_t got = read_be32();
    if (got != magic) {
      char msg[96];
      std::snprintf(msg, sizeof msg, ": not an IDX %s file (magic 0x%08x, expected 0x%08x)", what,
                    unsigned(got), unsigned(magic));
      throw IoError(path_ + msg);
    }
  }

  /// Reads exactly `count` payload bytes and checks nothing follows. The buffer grows with the
  /// data actually read, so a header claiming more than the file holds is reported as
  /// truncated instead of being allocated.
  std::vector<std::uint8_t> read_payload(std::uint64_t count) {
    constexpr std::uint64_t kChunk = 1u << 24;
    std::vector<std::uint8_t> data;
    while (data.size() < count) {
      const std::size_t have = data.size();
      data.resize(have + std::size_t(std::min(kChunk, count - have)));
      const std::size_t got = read(data.data() + have, data.size() - have);
      if (have + got < data.size())
        throw IoError(path_ + ": truncated: the IDX header promises " + std::to_string(count) +
                      " data bytes but the file ends after " + std::to_string(have + got));
    }
    unsigned char extra;
    if (read(&extra, 1) != 0)
      throw IoError(path_ + ": more data than the IDX header describes (" + std::to_string(count) +
                    " bytes); not an IDX file?");
    return data;
  }

private:
  std::string path_;
  gzFile f_;
};

/// The labels file beside an images file by MNIST naming (train-images-idx3-ubyte[.gz] ->
/// train-labels-idx1-ubyte[.gz]; some mirrors use train-images.idx3-ubyte); "" if the name
/// follows neither pattern.
std::string idx_label_sibling(const std::string& images_path) {
  const fs::path p(images_path);
  std::string name = p.filename().string();
  const std::pair<std::string, std::string> patterns[] = {
      {"images-idx3-ubyte", "labels-idx1-ubyte"}, {"images.idx3-ubyte", "labels.idx1-ubyte"}};
  for (const auto& [from, to] : patterns) {
    const auto pos = name.rfind(from);
    if (pos != std::string::npos)
      return (p.parent_path() / name.replace(pos, from.size(), to)).string();
  }
  return "";
}

/// The images file of `split` in an MNIST-style directory.
std::string idx_images_in(const std::string& dir, const std::string& split) {
  const std::string prefix = split == "train" ? "train" : "t10k";
  for (const char* suffix : {"-images-idx3-ubyte.gz", "-images-idx3-ubyte", "-images.idx3-ubyte"}) {
    const fs::path candidate = fs::path(dir) / (prefix + suffix);
    if (fs::exists(candidate))
      return candidate.string();
  }
  throw IoError(dir + ": no " + prefix + "-images-idx3-ubyte[.gz] (not an MNIST-style directory?)");
}

/// The CIFAR-10 batches of `split` when `path` is a directory, else the single file `path`.
std::vector<std::string> cifar_files(const std::string& path, const std::string& split) {
  if (!fs::is_directory(path))
    return {path};
  if (split == "test")
    return {(fs::path(path) / "test_batch.bin").string()};
  std::vector<std::string> files;
  for (int b = 1; b <= 5; ++b)
    files.push_back((fs::path(path) / ("data_batch_" + std::to_string(b) + ".bin")).string());
  return files;
}

/// spec.path, or the format's built-in data ("" when it has none).
std::string data_path(const DatasetSpec& spec) {
  if (!spec.path.empty())
    return spec.path;
  if (spec.format == "fashion-mnist")
    return kFashionMnistDir;
  if (spec.format == "png-tiles")
    return kBuiltinPhotos;
  return "";
}

/// data_path(spec), which must exist.
std::string required_path(const DatasetSpec& spec) {
  const std::string path = data_path(spec);
  if (path.empty())
    throw InvalidArgument("dataset format '" + spec.format + "' needs a path");
  return path;
}

[[noreturn]] void unknown_format(const DatasetSpec& spec) {
  throw InvalidArgument(
      "unknown dataset format '" + spec.format +
      "' (expected fashion-mnist, mnist-idx, idx, cifar10, png-list or png-tiles)");
}

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
  if (spec.split == "test")
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

} // namespace

ImageSet read_cifar10(const std::vector<std::string>& files, const ImageSelection& select) {
  if (files.empty())
    throw InvalidArgument("read_cifar10: no files given");
  // Sizes first, so the whole set is allocated once and a bad file fails before any reading.
  std::vector<std::int64_t> records;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec)
      throw IoError(f + ": cannot read CIFAR-10 file (" + ec.message() + ")");
    if (size == 0 || size % kCifarRecord != 0)
      throw IoError(f + ": truncated or not a CIFAR-10 binary file (size " + std::to_string(size) +
                    " is not a positive multiple of 3073)");
    records.push_back(std::int64_t(size / kCifarRecord));
  }
  std::string source = "cifar10:";
  for (std::size_t fi = 0; fi < files.size(); ++fi)
    source += (fi ? "," : "") + files[fi];
  const std::int64_t total = std::accumulate(records.begin(), records.end(), std::int64_t(0));
  const std::vector<std::int64_t> keep =
      select ? select(total, source) : std::vector<std::int64_t>();
  const bool all = keep.empty();

  ImageSet set;
  set.channels = 3;
  set.height = set.width = 32;
  set.n = all ? total : std::int64_t(keep.size());
  set.pixels.resize(set.n * kCifarPixels);
  set.labels.resize(set.n);
  std::vector<std::uint8_t> record(kCifarRecord);
  std::int64_t i = 0, first = 0; // i: next image of the set; first: file's first global index
  std::size_t next = 0;          // next entry of keep
  for (std::size_t fi = 0; fi < files.size() && i < set.n; first += records[fi], ++fi) {
    if (!all && (next == keep.size() || keep[next] >= first + records[fi]))
      continue; // nothing wanted from this file
    std::ifstream in(files[fi], std::ios::binary);
    if (!in)
      throw IoError(files[fi] + ": cannot open (" + std::strerror(errno) + ")");
    for (std::int64_t r = 0; r < records[fi]; ++r) {
      if (!all) {
        if (next == keep.size() || keep[next] >= first + records[fi])
          break;
        r = keep[next++] - first;
        in.seekg(std::streamoff(r * kCifarRecord));
      }
      if (!in.read(reinterpret_cast<char*>(record.data()), kCifarRecord))
        throw IoError(files[fi] + ": read failed at record " + std::to_string(r));
      if (record[0] > 9)
        throw IoError(files[fi] + ": record " + std::to_string(r) + " has label " +
                      std::to_string(record[0]) + ", not 0..9; not a CIFAR-10 file?");
      set.labels[i] = record[0];
      std::transform(record.begin() + 1, record.end(), set.image(i), unit);
      ++i;
    }
  }
  set.identity = source + " " + shape_of(set);
  return set;
}

ImageSet read_idx(const std::string& images_path, const ImageSelection& select) {
  GzInput in(images_path);
  in.expect_magic(kIdxImagesMagic, "unsigned-byte image");
  const std::uint32_t n = in.read_be32(), h = in.read_be32(), w = in.read_be32();
  if (n == 0 || h == 0 || w == 0)
    throw IoError(images_path + ": IDX header has a zero dimension (" + std::to_string(n) + "x" +
                  std::to_string(h) + "x" + std::to_string(w) + ")");
  if (std::uint64_t(h) * w > kIdxMaxImagePixels)
    throw IoError(images_path + ": IDX header claims " + std::to_string(h) + "x" +
                  std::to_string(w) + " images, implausibly large; corrupt header?");
  const std::uint64_t plane = std::uint64_t(h) * w, payload = std::uint64_t(n) * plane;
  const std::vector<std::int64_t> keep =
      select ? select(n, "idx:" + images_path + " n=" + std::to_string(n) + " 1x" +
                             std::to_string(h) + "x" + std::to_string(w))
             : std::vector<std::int64_t>();

  ImageSet set;
  set.n = keep.empty() ? n : std::int64_t(keep.size());
  set.channels = 1;
  set.height = int(h);
  set.width = int(w);
  if (keep.empty()) {
    const std::vector<std::uint8_t> raw = in.read_payload(payload);
    set.pixels.resize(raw.size());
    std::transform(raw.begin(), raw.end(), set.pixels.begin(), unit);
  } else { // only the images kept: a subset of Fashion-MNIST need not decode all 60,000
    in.check_plain_size(16, payload);
    set.pixels.resize(std::size_t(set.n) * plane);
    std::vector<std::uint8_t> raw(plane);
    for (std::size_t i = 0; i < keep.size(); ++i) {
      in.read_at(16 + std::uint64_t(keep[i]) * plane, raw.data(), raw.size(), payload);
      std::transform(raw.begin(), raw.end(), set.image(std::int64_t(i)), unit);
    }
  }
  set.labels.assign(set.n, -1);

  const std::string labels_path = idx_label_sibling(images_path);
  if (!labels_path.empty() && fs::exists(labels_path)) {
    GzInput lin(labels_path);
    lin.expect_magic(kIdxLabelsMagic, "unsigned-byte label");
    const std::uint32_t count = lin.read_be32();
    if (count != n)
      throw IoError(labels_path + ": has " + std::to_string(count) + " labels but " + images_path +
                    " has " + std::to_string(n) + " images");
    if (keep.empty()) {
      const std::vector<std::uint8_t> labels = lin.read_payload(n);
      std::copy(labels.begin(), labels.end(), set.labels.begin());
    } else {
      lin.check_plain_size(8, n);
      for (std::size_t i = 0; i < keep.size(); ++i) {
        std::uint8_t label = 0;
        lin.read_at(8 + std::uint64_t(keep[i]), &label, 1, n);
        set.labels[i] = label;
      }
    }
  }
  set.identity = "idx:" + images_path + " " + shape_of(set);
  return set;
}

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
  const std::string path = required_path(spec);
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

ImageSet load_dataset(const DatasetSpec& spec) {
  if (spec.split != "train" && spec.split != "test")
    throw InvalidArgument("dataset split must be train or test, got '" + spec.split + "'");
  if (spec.subset_mode != "first" && spec.subset_mode != "random")
    throw InvalidArgument("dataset subset mode must be first or random, got '" + spec.subset_mode +
                          "'");
  if (spec.subset < 0)
    throw InvalidArgument("dataset subset must be >= 0 (0 = all), got " +
                          std::to_string(spec.subset));
  const auto path = [&] { return required_path(spec); };

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
    if (spec.subset_mode == "random") {
      SplitMix64 rng(hash_combine(spec.seed, kSubsetStream));
      shuffle_prefix(keep, spec.subset, rng);
      std::sort(keep.begin(), keep.begin() + spec.subset); // a subset, in file order
    }
    keep.resize(std::size_t(spec.subset));
    return keep;
  };
  ImageSet set;
  std::string details; // format-specific identity
  if (spec.format == "fashion-mnist" || spec.format == "mnist-idx")
    set = read_idx(idx_images_in(path(), spec.split), select);
  else if (spec.format == "idx")
    set = read_idx(path(), select);
  else if (spec.format == "cifar10")
    set = read_cifar10(cifar_files(path(), spec.split), select);
  else if (spec.format == "png-list")
    set = read_png_list(path(), spec.channels, spec.height, spec.width, select);
  else if (spec.format == "png-tiles") {
    const TileLayout layout = png_tile_layout(spec);
    const auto n = std::int64_t(layout.tiles.size());
    if (spec.subset > n)
      throw InvalidArgument(path() + ": asked " + std::to_string(spec.subset) + " tiles, the " +
                            std::to_string(layout.photos.size()) + " " + spec.split +
                            " photographs hold " + std::to_string(n));
    set = cut_tiles(layout, spec, select(n, path()));
    std::vector<std::int64_t> tiles_of(layout.photos.size(), 0);
    for (const int p : set.labels)
      ++tiles_of[std::size_t(p)];
    details = " tile_seed=" + std::to_string(spec.tile_seed) +
              " test_photos_fraction=" + exact(spec.test_photos_fraction) + " photos=";
    for (std::size_t p = 0; p < layout.photos.size(); ++p)
      details += (p ? "," : "") + layout.photos[p] + ":" + std::to_string(tiles_of[p]);
  } else
    unknown_format(spec);

  // The identity describes the data itself: the seed only matters for a random subset.
  std::string selection = "all";
  if (spec.subset > 0) {
    selection = std::to_string(spec.subset) + " " + spec.subset_mode;
    if (spec.subset_mode == "random")
      selection += " seed=" + std::to_string(spec.seed);
  }
  set.identity = "format=" + spec.format +
                 " path=" + fs::absolute(path()).lexically_normal().string() +
                 " split=" + spec.split + " subset=" + selection + " " + shape_of(set) + details;
  return set;
}

std::vector<std::string> dataset_files(const DatasetSpec& spec) {
  const std::string path = data_path(spec);
  if (path.empty())
    return {};
  std::vector<std::string> files{path};
  try {
    // png-tiles: the photographs of both splits, so that no output replaces a test photograph.
    for (const auto& f : spec.format == "png-tiles" ? tile_photos(path) : dataset_sources(spec)) {
      if (f != path)
        files.push_back(f);
      if (const std::string labels = idx_label_sibling(f); !labels.empty())
        files.push_back(labels);
    }
  } catch (const Error&) {
    // A missing or unreadable input: load_dataset reports it; what was found so far is listed.
  }
  return files;
}

std::vector<std::string> dataset_sources(const DatasetSpec& spec) {
  const std::string path = required_path(spec);
  if (spec.format == "fashion-mnist" || spec.format == "mnist-idx")
    return {idx_images_in(path, spec.split)};
  if (spec.format == "idx")
    return {path};
  if (spec.format == "cifar10")
    return cifar_files(path, spec.split);
  if (spec.format == "png-list")
    return png_list_files(path);
  if (spec.format != "png-tiles")
    unknown_format(spec);
  const std::vector<std::string> all = tile_photos(path);
  std::vector<std::string> photos;
  for (const std::size_t i : split_photos(all.size(), spec, path))
    photos.push_back(all[i]);
  return photos;
}

DatasetSpec dataset_spec_of_identity(const std::string& identity) {
  // load_dataset writes "format=F path=P split=S subset=... n=N CxHxW[ tile_seed=T
  // test_photos_fraction=F photos=...]"; P may hold spaces, so it ends at " split=".
  const auto field = [&](const std::string& key, const std::string& end) {
    const auto at = identity.find(key);
    if (at == std::string::npos)
      throw InvalidArgument("not a dataset identity of load_dataset: '" + identity + "'");
    const auto from = at + key.size();
    return identity.substr(from, identity.find(end, from) - from);
  };
  if (identity.rfind("format=", 0) != 0)
    throw InvalidArgument("not a dataset identity of load_dataset: '" + identity + "'");
  DatasetSpec spec;
  spec.format = field("format=", " ");
  spec.path = field(" path=", " split=");
  spec.split = field(" split=", " ");
  if (spec.format == "png-tiles") {
    const std::string seed = field(" tile_seed=", " "), f = field(" test_photos_fraction=", " ");
    const auto s = std::from_chars(seed.data(), seed.data() + seed.size(), spec.tile_seed);
    const auto r = std::from_chars(f.data(), f.data() + f.size(), spec.test_photos_fraction);
    if (s.ec != std::errc() || r.ec != std::errc())
      throw InvalidArgument("not a png-tiles identity of load_dataset: '" + identity + "'");
  }
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
