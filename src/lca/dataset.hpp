#pragma once
// Dataset readers (CIFAR-10 binary, IDX/MNIST, PNG lists, tiles of photographs), subsetting,
// the per-image normalisation of algorithm.md §2 and the deterministic epoch order. Host-side
// only: the solver copies batches to the device.
#include "lca/enum_names.hpp"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace lca {

/// Dataset formats, the values of the apps' --data (see DatasetSpec::path).
enum class DataFormat { fashion_mnist, mnist_idx, idx, cifar10, png_list, png_tiles };
inline constexpr EnumName<DataFormat> kDataFormatNames[] = {
    {"fashion-mnist", DataFormat::fashion_mnist},
    {"mnist-idx", DataFormat::mnist_idx},
    {"idx", DataFormat::idx},
    {"cifar10", DataFormat::cifar10},
    {"png-list", DataFormat::png_list},
    {"png-tiles", DataFormat::png_tiles}};
const char* to_string(DataFormat f);
std::ostream& operator<<(std::ostream& os, DataFormat f);
DataFormat parse_data_format(const std::string& text); ///< throws InvalidArgument for other text

/// Which split of a directory-based dataset.
enum class Split { train, test };
inline constexpr EnumName<Split> kSplitNames[] = {{"train", Split::train}, {"test", Split::test}};
const char* to_string(Split s);
std::ostream& operator<<(std::ostream& os, Split s);
Split parse_split(const std::string& text); ///< throws InvalidArgument for other text

/// Which images a subset keeps: the first ones, or a random choice (kept in file order).
enum class SubsetMode { first, random };
inline constexpr EnumName<SubsetMode> kSubsetModeNames[] = {{"first", SubsetMode::first},
                                                            {"random", SubsetMode::random}};
const char* to_string(SubsetMode m);
std::ostream& operator<<(std::ostream& os, SubsetMode m);
SubsetMode parse_subset_mode(const std::string& text); ///< throws InvalidArgument for other text

/// Host images, float32, layout [n][c][h][w] contiguous.
struct ImageSet {
  std::int64_t n = 0;
  int channels = 0, height = 0, width = 0;
  std::vector<float> pixels; ///< readers scale raw 8-bit values to [0, 1] (u8 / 255)
  std::vector<int> labels;   ///< one per image, -1 when unknown
  /// Stable description of where the images came from (format, path, selection, n, shape);
  /// a --resume compares it with the checkpoint's.
  std::string identity;

  std::int64_t image_size() const { return std::int64_t(channels) * height * width; } ///< c*h*w
  const float* image(std::int64_t i) const { return pixels.data() + i * image_size(); }
  float* image(std::int64_t i) { return pixels.data() + i * image_size(); }
};

/// Which images a reader keeps, chosen from their number n alone (and `source`, a description of
/// the file(s) for messages): indices in increasing order, or empty for all. The readers then
/// read only those images, so a small subset of a large file costs little.
using ImageSelection =
    std::function<std::vector<std::int64_t>(std::int64_t n, const std::string& source)>;

/// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3x32x32,
/// channel-major), concatenated in the order given. Throws IoError.
ImageSet read_cifar10(const std::vector<std::string>& files, const ImageSelection& select = {});

/// IDX unsigned-byte images of rank 3 (n, h, w), plain or gzip-compressed (MNIST,
/// Fashion-MNIST); c = 1. Labels come from the sibling file by the usual naming
/// (...images-idx3-ubyte[.gz] -> ...labels-idx1-ubyte[.gz]) when it exists, else -1.
/// Throws IoError for a wrong magic, implausible header or truncated data.
/// With a selection, only the selected images (and labels) are read; a plain file's size is
/// still checked against the header, a gzip file's tail is not decompressed.
ImageSet read_idx(const std::string& images_path, const ImageSelection& select = {});

/// A text file listing one PNG per line (relative paths are relative to the list file's
/// directory; blank lines and lines starting with # are skipped). Each image is converted to
/// `channels` (1 or 3): gray->RGB replicates, RGB->gray uses luminance 0.299/0.587/0.114,
/// alpha is dropped, 16-bit is scaled to 8. Every image must be exactly height x width.
/// Throws IoError (InvalidArgument for a bad channel count or size).
ImageSet read_png_list(const std::string& list_path, int channels, int height, int width,
                       const ImageSelection& select = {});

/// What to load, as the apps' --dataset flags describe it.
struct DatasetSpec {
  DataFormat format = DataFormat::fashion_mnist;
  /// fashion-mnist, mnist-idx: directory (fashion-mnist defaults to
  /// /usr/share/datasets/fashion-mnist); idx: the images file; cifar10: a directory holding
  /// data_batch_1..5.bin / test_batch.bin, or a single .bin file; png-list: the list file;
  /// png-tiles: a directory of PNG photographs or a list file like png-list's (default: the
  /// source tree's inputs/photos-skimage.txt, compiled in).
  std::string path;
  Split split = Split::train; ///< for directory-based formats
  std::int64_t subset = 0;    ///< 0 = all images; else keep this many
  SubsetMode subset_mode = SubsetMode::first;
  std::uint64_t seed = 1;                    ///< for a random subset
  int channels = 3, height = 32, width = 32; ///< png-list images, png-tiles tiles
  std::uint64_t tile_seed = 1;               ///< png-tiles: photo split, tile grids, tile order
  double test_photos_fraction = 0.25;        ///< png-tiles: share of photographs in the test split
};

/// png-tiles (see load_dataset): which tiles of which photographs a split holds.
struct TileLayout {
  struct Tile {
    int photo = 0;    ///< index into photos
    int y = 0, x = 0; ///< top-left corner in the photograph
  };
  std::vector<std::string> photos; ///< the split's photographs, sorted by path
  std::vector<Tile> tiles;         ///< in dataset order, before any subset
};

/// The tiles of spec's png-tiles split, from the PNG headers alone. The photographs (a
/// directory's *.png, or a list's entries) are sorted by path; a permutation seeded by
/// tile_seed puts the first max(1, round(test_photos_fraction * n)) of them in the test split,
/// the rest in the train split, so no photograph gives tiles to both. Each photograph of the
/// split is cut into every whole height x width tile of a grid whose origin (0..H mod height,
/// 0..W mod width) is drawn per photograph; the tiles of the split are then shuffled, so a
/// first-N subset spreads over the photographs. Throws IoError naming the file for a missing or
/// unreadable photograph, one smaller than a tile, a gray one when 3 channels are asked, fewer
/// than 2 photographs or one named twice; InvalidArgument for bad sizes or fraction.
TileLayout png_tile_layout(const DatasetSpec& spec);

/// Reads the dataset `spec` names and applies the subset. Throws InvalidArgument for a format
/// without its path or a subset larger than the dataset; IoError from
/// the readers. png-tiles cuts the tiles of png_tile_layout, converting channels as png-list
/// does except that gray is not replicated to RGB (the set is meant to be natural colour); a
/// tile's label is the index of its photograph in the layout's photos, and the identity lists
/// the split's photographs with how many tiles each gave. Only the kept tiles are stored.
ImageSet load_dataset(const DatasetSpec& spec);

/// The files load_dataset(spec) would read (the dataset directory or list too; png-tiles: the
/// photographs of both splits), so that the apps can refuse an output that would overwrite
/// one. Best effort, never throws: a missing directory or list yields only the paths known
/// without it.
std::vector<std::string> dataset_files(const DatasetSpec& spec);

/// The files the images of spec's split come from: the split's IDX images file or CIFAR-10
/// batches, an idx file, a png-list's PNGs, a png-tiles split's photographs (whatever the
/// subset). Throws like load_dataset for a missing directory or list.
std::vector<std::string> dataset_sources(const DatasetSpec& spec);

/// The spec an ImageSet::identity of load_dataset describes, as far as dataset_sources needs it
/// (format, path, split and the png-tiles split options). Throws InvalidArgument for text that
/// load_dataset did not write.
DatasetSpec dataset_spec_of_identity(const std::string& identity);

/// How many images of `test` are pixel for pixel an image of `train` (by hashes of the pixel
/// vectors, confirmed by comparing them); 0 when the shapes differ. Meant for the raw pixels,
/// before normalize_images (which maps e.g. an image and a brighter copy to the same values).
std::int64_t shared_images(const ImageSet& train, const ImageSet& test);

/// Moves `count` images of `set`, drawn by a permutation seeded by `seed` alone, into the
/// returned validation set (both keep file order), so the same data and seed always hold out the
/// same images and the dictionary never trains on them. Both identities say so (a --resume with
/// another hold-out is refused). Throws InvalidArgument unless 0 < count < set.n.
ImageSet hold_out(ImageSet& set, std::int64_t count, std::uint64_t seed);

/// algorithm.md §2: each image minus its mean over all pixels and channels, divided by its
/// population standard deviation (both in double). An image whose std is at most 1e-6 of
/// |mean| (in particular std == 0) is constant up to float rounding: it is set to zero
/// instead, and counted. Returns that count. Throws NumericalError for a NaN/Inf pixel.
std::int64_t normalize_images(ImageSet& set);

/// The order images are visited in `epoch`: a permutation of 0..n-1 drawn by Fisher-Yates
/// from SplitMix64 streams keyed by (seed, epoch), identical on every platform; the identity
/// when !shuffle.
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                      bool shuffle);

} // namespace lca
