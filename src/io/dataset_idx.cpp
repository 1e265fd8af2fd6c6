// IDX (MNIST, Fashion-MNIST) images, plain or gzip-compressed: read_idx and the readers of the
// formats fashion-mnist, mnist-idx (a directory of the two splits) and idx (one file).
#include "dataset_reader.hpp"
#include "lca/error.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace lca {
namespace fs = std::filesystem;
using namespace Impl;

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

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
std::string idx_images_in(const std::string& dir, Split split) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  for (const char* suffix : {"-images-idx3-ubyte.gz", "-images-idx3-ubyte", "-images.idx3-ubyte"}) {
    const fs::path candidate = fs::path(dir) / (prefix + suffix);
    if (fs::exists(candidate))
      return candidate.string();
  }
  throw IoError(dir + ": no " + prefix + "-images-idx3-ubyte[.gz] (not an MNIST-style directory?)");
}

} // namespace

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

namespace Impl {
namespace {

/// An images file with its labels sibling (an output must not replace either).
std::vector<std::string> with_labels(const std::string& images) {
  std::vector<std::string> files{images};
  if (std::string labels = idx_label_sibling(images); !labels.empty())
    files.push_back(std::move(labels));
  return files;
}

/// fashion-mnist, mnist-idx: a directory holding both splits.
class IdxDirectoryReader : public DatasetReader {
public:
  explicit IdxDirectoryReader(const char* builtin) : builtin_(builtin) {}
  std::string builtin_path() const override { return builtin_; }
  std::vector<std::string> sources(const DatasetSpec& spec,
                                   const std::string& path) const override {
    return {idx_images_in(path, spec.split)};
  }
  std::vector<std::string> inputs(const DatasetSpec& spec, const std::string& path) const override {
    return with_labels(idx_images_in(path, spec.split));
  }
  ImageSet load(const DatasetSpec& spec, const std::string& path, const ImageSelection& select,
                DatasetIdentity&) const override {
    return read_idx(idx_images_in(path, spec.split), select);
  }

private:
  const char* builtin_;
};

/// idx: one images file.
class IdxFileReader : public DatasetReader {
public:
  std::vector<std::string> sources(const DatasetSpec&, const std::string& path) const override {
    return {path};
  }
  std::vector<std::string> inputs(const DatasetSpec&, const std::string& path) const override {
    return with_labels(path);
  }
  ImageSet load(const DatasetSpec&, const std::string& path, const ImageSelection& select,
                DatasetIdentity&) const override {
    return read_idx(path, select);
  }
};

} // namespace

const DatasetReader& fashion_mnist_reader() {
  static const IdxDirectoryReader reader(kFashionMnistDir);
  return reader;
}
const DatasetReader& mnist_idx_reader() {
  static const IdxDirectoryReader reader("");
  return reader;
}
const DatasetReader& idx_reader() {
  static const IdxFileReader reader;
  return reader;
}

} // namespace Impl
} // namespace lca
