// lca::read_png and lca::read_png_list.
//
// Input: byte 0 = flags (bit 0: list images get 3 channels, else 1), byte 1 = length T of the
// list text, then T bytes of list text, then the PNG file ("img.png" beside the list). The
// PNG is read on its own (any size); then the list is read at the size the PNG turned out to
// have (or 8x8 when it was rejected), which also drives the gray/RGB conversions.
#include "fuzz_common.hpp"
#include "lca/dataset.hpp"
#include "lca/image_png.hpp"

#include <algorithm>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2)
    return 0;
  const int channels = data[0] & 1 ? 3 : 1;
  const std::size_t text = std::min<std::size_t>(data[1], size - 2);
  const std::string list = lca::fuzz::put("list.txt", data + 2, text);
  const std::string png = lca::fuzz::put("img.png", data + 2 + text, size - 2 - text);

  int height = 8, width = 8;
  lca::fuzz::expect_errors_only([&] {
    const lca::PngImage img = lca::read_png(png);
    if ((img.channels != 1 && img.channels != 3) || img.width < 1 || img.height < 1 ||
        img.pixels.size() != std::size_t(img.width) * img.height * img.channels)
      std::abort();
    height = img.height, width = img.width;
  });
  // The whole set is allocated for the list: keep that bounded (the fuzzer's own memory limit
  // would otherwise trip on a long list of a large valid image).
  if (std::int64_t(height) * width > (1 << 16))
    return 0;
  lca::fuzz::expect_errors_only([&] {
    const lca::ImageSet set = lca::read_png_list(list, channels, height, width);
    if (set.n < 1 || std::int64_t(set.pixels.size()) != set.n * set.image_size())
      std::abort();
  });
  return 0;
}
