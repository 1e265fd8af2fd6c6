#pragma once
// PNG reading and writing (libpng) and the dictionary feature montage.
#include <cstdint>
#include <string>
#include <vector>

namespace lca {

/// An 8-bit image, interleaved row-major: pixels[(y * width + x) * channels + ch].
struct PngImage {
  int width = 0, height = 0;
  int channels = 0; ///< 1 (gray) or 3 (RGB)
  std::vector<std::uint8_t> pixels;
};

/// Reads the raw samples of a PNG: palettes expanded to RGB, alpha and tRNS dropped, 1/2/4-bit
/// gray expanded and 16-bit scaled to 8 bits; no gamma or colour-space conversion. When
/// height and width are positive the image must be exactly that size (checked from the header,
/// before decoding). Throws IoError naming the file.
PngImage read_png(const std::string& path, int height = 0, int width = 0);

/// What read_png would return, without the pixels: the size and channels from the header alone
/// (checked against the file's size). Throws IoError naming the file.
PngImage read_png_info(const std::string& path);

/// Writes an 8-bit gray (channels 1) or RGB (channels 3) PNG from interleaved row-major
/// samples, encoded in memory and written with lca::AtomicFile (all or nothing). Throws IoError
/// naming the path, InvalidArgument for inconsistent sizes.
void write_png(const std::string& path, int width, int height, int channels,
               const std::vector<std::uint8_t>& rgb_or_gray);

/// The feature figure of PetaVision papers: the nf features of `dict` (layout [nf][c][k][k])
/// as tiles on a grid of ceil(sqrt(nf)) columns, each stretched on its own symmetrically
/// around 0 (128 + 127 * v / max|v|, so 0 is mid-gray), upscaled `scale` times by nearest
/// neighbour, separated and framed by 1-pixel black lines. c == 1 gives gray, c == 3 RGB.
/// Throws InvalidArgument for bad sizes, NumericalError for a non-finite weight, IoError.
void write_feature_montage(const std::string& path, const float* dict, int nf, int c, int k,
                           int scale = 4);

} // namespace lca
