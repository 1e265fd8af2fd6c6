// CIFAR-10 binary batches: read_cifar10 and the reader of the format cifar10.
#include "dataset_reader.hpp"
#include "lca/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <system_error>

namespace lca {
namespace fs = std::filesystem;
using namespace Impl;

namespace {

constexpr std::int64_t kCifarPixels = 3 * 32 * 32;
constexpr std::int64_t kCifarRecord = 1 + kCifarPixels;

/// The CIFAR-10 batches of `split` when `path` is a directory, else the single file `path`.
std::vector<std::string> cifar_files(const std::string& path, Split split) {
  if (!fs::is_directory(path))
    return {path};
  if (split == Split::test)
    return {(fs::path(path) / "test_batch.bin").string()};
  std::vector<std::string> files;
  for (int b = 1; b <= 5; ++b)
    files.push_back((fs::path(path) / ("data_batch_" + std::to_string(b) + ".bin")).string());
  return files;
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

namespace Impl {
namespace {

/// cifar10: a directory of the batches of both splits, or one batch file.
class Cifar10Reader : public DatasetReader {
public:
  std::vector<std::string> sources(const DatasetSpec& spec,
                                   const std::string& path) const override {
    return cifar_files(path, spec.split);
  }
  ImageSet load(const DatasetSpec& spec, const std::string& path, const ImageSelection& select,
                DatasetIdentity&) const override {
    return read_cifar10(cifar_files(path, spec.split), select);
  }
};

} // namespace

const DatasetReader& cifar10_reader() {
  static const Cifar10Reader reader;
  return reader;
}

} // namespace Impl
} // namespace lca
