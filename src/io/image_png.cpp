#include "lca/image_png.hpp"

#include "lca/atomic_file.hpp"
#include "lca/error.hpp"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace lca {
namespace {

/// Owns the libpng read state; its destructor frees everything however reading ended.
struct PngReadHandle {
  std::FILE* fp = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = "";        ///< libpng's last error, filled by on_png_error
  std::uint64_t stored_bits = 0; ///< width * height * bits per pixel as stored (before transforms)
  PngReadHandle() = default;
  PngReadHandle(const PngReadHandle&) = delete;
  PngReadHandle& operator=(const PngReadHandle&) = delete;
  ~PngReadHandle() {
    if (png)
      png_destroy_read_struct(&png, &info, nullptr);
    if (fp)
      std::fclose(fp);
  }
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp msg) {
  auto* h = static_cast<PngReadHandle*>(png_get_error_ptr(png));
  std::snprintf(h->message, sizeof h->message, "%s", msg);
  png_longjmp(png, 1);
}

// Warnings (e.g. "iCCP: known incorrect sRGB profile") concern colour metadata, which raw-sample
// reading ignores; printing them would only clutter the run log.
void on_png_warning(png_structp, png_const_charp) {}

// libpng reports errors by longjmp back to the setjmp below. These two functions hold only
// trivially destructible locals and read none of them after the jump, so the jump skips no
// destructor; they return false and the caller throws with h.message.

/// Reads the header and sets up the transforms to 8-bit gray or RGB samples.
bool read_png_header(PngReadHandle& h) {
  if (setjmp(png_jmpbuf(h.png)))
    return false;
  png_init_io(h.png, h.fp);
  png_read_info(h.png, h.info);
  h.stored_bits = std::uint64_t(png_get_image_width(h.png, h.info)) *
                  png_get_image_height(h.png, h.info) * png_get_bit_depth(h.png, h.info) *
                  png_get_channels(h.png, h.info);
  png_set_scale_16(h.png);
  png_set_palette_to_rgb(h.png);
  png_set_expand_gray_1_2_4_to_8(h.png);
  png_set_strip_alpha(h.png);
  png_set_interlace_handling(h.png);
  png_read_update_info(h.png, h.info);
  return true;
}

bool read_png_rows(PngReadHandle& h, png_bytepp rows) {
  if (setjmp(png_jmpbuf(h.png)))
    return false;
  png_read_image(h.png, rows);
  png_read_end(h.png, nullptr);
  return true;
}

/// Opens `path` and reads its header: the image's size and channels after the transforms to
/// 8-bit gray or RGB (no pixels yet). Throws IoError naming the file.
PngImage open_png(PngReadHandle& h, const std::string& path) {
  h.fp = std::fopen(path.c_str(), "rb");
  if (!h.fp)
    throw IoError(path + ": cannot open PNG (" + std::strerror(errno) + ")");
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &h, on_png_error, on_png_warning);
  if (h.png)
    h.info = png_create_info_struct(h.png);
  if (!h.info)
    throw IoError(path + ": cannot create a libpng reader (out of memory)");
  if (!read_png_header(h))
    throw IoError(path + ": not a readable PNG (" + h.message + ")");
  PngImage img;
  img.width = int(png_get_image_width(h.png, h.info));
  img.height = int(png_get_image_height(h.png, h.info));
  img.channels = png_get_channels(h.png, h.info);
  if ((img.channels != 1 && img.channels != 3) ||
      png_get_rowbytes(h.png, h.info) != std::size_t(img.width) * img.channels)
    throw IoError(path + ": unsupported PNG sample layout");
  // Check the header against the file before anything is allocated by it: the pixels are
  // deflate-compressed, which expands data at most 1032:1, so a file of N bytes holds at most
  // ~1032 N bytes of samples. (A header of a few dozen bytes can otherwise claim 100000 x 100000
  // pixels, or as many tiles.)
  constexpr std::uint64_t kMaxDeflateRatio = 1032;
  std::error_code ec;
  const std::uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec)
    throw IoError(path + ": cannot get the size of the PNG file (" + ec.message() + ")");
  if (h.stored_bits / 8 > kMaxDeflateRatio * (file_bytes + 1))
    throw IoError(path + ": corrupt PNG: the header claims " + std::to_string(img.width) + "x" +
                  std::to_string(img.height) + " pixels, more than a file of " +
                  std::to_string(file_bytes) + " bytes can hold");
  return img;
}

} // namespace

PngImage read_png_info(const std::string& path) {
  PngReadHandle h;
  return open_png(h, path);
}

PngImage read_png(const std::string& path, int height, int width) {
  PngReadHandle h;
  PngImage img = open_png(h, path);
  if ((height > 0 && img.height != height) || (width > 0 && img.width != width))
    throw IoError(path + ": image is " + std::to_string(img.height) + "x" +
                  std::to_string(img.width) + " (height x width), expected " +
                  std::to_string(height) + "x" + std::to_string(width));
  const std::size_t row_bytes = std::size_t(img.width) * img.channels;
  img.pixels.resize(row_bytes * img.height);
  std::vector<png_bytep> rows(img.height);
  for (int y = 0; y < img.height; ++y)
    rows[y] = img.pixels.data() + y * row_bytes;
  if (!read_png_rows(h, rows.data()))
    throw IoError(path + ": corrupt PNG data (" + h.message + ")");
  return img;
}

void write_png(const std::string& path, int width, int height, int channels,
               const std::vector<std::uint8_t>& rgb_or_gray) {
  if (width <= 0 || height <= 0 || (channels != 1 && channels != 3))
    throw InvalidArgument(path + ": write_png needs a positive size and 1 or 3 channels, got " +
                          std::to_string(width) + "x" + std::to_string(height) + "x" +
                          std::to_string(channels));
  const std::size_t expected = std::size_t(width) * height * channels;
  if (rgb_or_gray.size() != expected)
    throw InvalidArgument(path + ": write_png got " + std::to_string(rgb_or_gray.size()) +
                          " samples for a " + std::to_string(width) + "x" + std::to_string(height) +
                          "x" + std::to_string(channels) + " image (needs " +
                          std::to_string(expected) + ")");

  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(width);
  img.height = png_uint_32(height);
  img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;

  // Encoded in memory, then written all or nothing.
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(img, size, 0, rgb_or_gray.data(), 0, nullptr))
    throw IoError("cannot write PNG " + path + ": " + img.message);
  std::vector<std::uint8_t> encoded(size);
  if (!png_image_write_to_memory(&img, encoded.data(), &size, 0, rgb_or_gray.data(), 0, nullptr))
    throw IoError("cannot write PNG " + path + ": " + img.message);
  write_file_atomically(path, "PNG",
                        std::string_view(reinterpret_cast<const char*>(encoded.data()), size));
}

void write_feature_montage(const std::string& path, const float* dict, int nf, int c, int k,
                           int scale) {
  if (nf <= 0 || k <= 0 || scale <= 0 || (c != 1 && c != 3))
    throw InvalidArgument(path +
                          ": feature montage needs nf, k, scale > 0 and 1 or 3 channels, got nf=" +
                          std::to_string(nf) + " c=" + std::to_string(c) +
                          " k=" + std::to_string(k) + " scale=" + std::to_string(scale));
  int cols = 1;
  while (cols * cols < nf) // ceil(sqrt(nf)) without floating-point rounding
    ++cols;
  const int rows = (nf + cols - 1) / cols;
  const int tile = k * scale;
  const int pitch = tile + 1; // a tile and the border line before it
  const int width = cols * pitch + 1, height = rows * pitch + 1;
  std::vector<std::uint8_t> out(std::size_t(width) * height * c, 0); // black lines, empty cells

  const std::size_t feature_size = std::size_t(c) * k * k;
  for (int f = 0; f < nf; ++f) {
    const float* w = dict + f * feature_size;
    double max_abs = 0.0;
    for (std::size_t i = 0; i < feature_size; ++i) {
      if (!std::isfinite(w[i]))
        throw NumericalError(path + ": feature " + std::to_string(f) +
                             " has a non-finite weight, cannot draw the montage");
      max_abs = std::max(max_abs, double(std::fabs(w[i])));
    }
    const double gain = max_abs > 0.0 ? 127.0 / max_abs : 0.0; // an all-zero feature is gray
    const int x0 = (f % cols) * pitch + 1, y0 = (f / cols) * pitch + 1;
    for (int y = 0; y < tile; ++y)
      for (int x = 0; x < tile; ++x)
        for (int ch = 0; ch < c; ++ch) {
          const float v = w[(ch * k + y / scale) * k + x / scale];
          out[(std::size_t(y0 + y) * width + x0 + x) * c + ch] =
              std::uint8_t(std::lround(128.0 + gain * v));
        }
  }
  write_png(path, width, height, c, out);
}

} // namespace lca
