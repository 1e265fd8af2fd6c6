// lca::read_idx, plain and gzip, with and without a labels file beside the images.
//
// Input: byte 0 = flags (bit 0: write a labels file, bit 1: gzip both files); with bit 0,
// bytes 1-2 = the labels file's length L (little-endian), then L bytes of labels; the rest is
// the images file. Gzip mode compresses the fuzzer's bytes, so mutations explore the IDX
// header and payload behind a valid gzip stream; corrupt gzip streams come from the plain
// mode, which hands .gz seeds to the reader as they are (gzread detects gzip by its magic).
#include "fuzz_common.hpp"
#include "lca/dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <vector>

namespace {

std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) // 16: gzip
    std::abort();
  std::vector<std::uint8_t> out(deflateBound(&z, uLong(size)) + 32);
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = uInt(size);
  z.next_out = out.data();
  z.avail_out = uInt(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END)
    std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string write(const std::string& name, const std::uint8_t* data, std::size_t size, bool gz) {
  if (!gz)
    return lca::fuzz::put(name, data, size);
  const auto packed = gzip(data, size);
  return lca::fuzz::put(name + ".gz", packed.data(), packed.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  const std::uint8_t flags = data[0];
  const bool labels = flags & 1, gz = flags & 2;
  std::size_t pos = 1, label_size = 0;
  if (labels) {
    if (size < 3)
      return 0;
    label_size = std::min<std::size_t>(data[1] | std::size_t(data[2]) << 8, size - 3);
    pos = 3;
  }
  // Fresh names every time: a labels file left from the previous input must not be read.
  for (const char* stale : {"f-labels-idx1-ubyte", "f-labels-idx1-ubyte.gz"})
    std::filesystem::remove(lca::fuzz::scratch() + "/" + stale);
  if (labels)
    write("f-labels-idx1-ubyte", data + pos, label_size, gz);
  pos += label_size;
  const std::string images = write("f-images-idx3-ubyte", data + pos, size - pos, gz);
  lca::fuzz::expect_errors_only([&] {
    const lca::ImageSet set = lca::read_idx(images);
    if (set.n < 1 || set.channels != 1 ||
        std::int64_t(set.pixels.size()) != set.n * set.image_size() ||
        std::int64_t(set.labels.size()) != set.n)
      std::abort();
  });
  return 0;
}
