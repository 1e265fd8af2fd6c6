// lca::read_cifar10 on one file holding the fuzzer's bytes (records of 1 + 3072 bytes).
#include "fuzz_common.hpp"
#include "lca/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lca::fuzz::put("data_batch_1.bin", data, size);
  lca::fuzz::expect_errors_only([&] {
    const lca::ImageSet set = lca::read_cifar10({path});
    if (set.n < 1 || std::int64_t(set.pixels.size()) != set.n * set.image_size())
      std::abort(); // accepted input must give a consistent set
  });
  return 0;
}
