#pragma once
// A small RAII layer over the HDF5 C API for checkpoints and sweep files (written serially by
// rank 0). Every HDF5 call is checked; a failure becomes one lca::IoError line
// "<file>: <what failed> (<innermost HDF5 reason>)" and HDF5's own stack dump is silenced.
//
// hdf5.h is deliberately not included: the library links HDF5 privately, so this installed
// header must not need its include path. Dims is exactly std::vector<hsize_t> and the file
// handle an hid_t (both checked with static_assert in h5.cpp).
//
// All objects are addressed by path from the file root ("dictionary", "results/points", "/"),
// so no group or dataset handles escape this layer.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lca::h5 {

using Dims = std::vector<unsigned long long>; ///< == std::vector<hsize_t>

/// Dataset element types; each is stored as the matching little-endian IEEE / integer type and
/// read back only into the same type (no silent conversion).
enum class Type { f32, f64, i64, i32, u8 };

template <class T> constexpr Type type_of() {
  if constexpr (std::is_same_v<T, float>)
    return Type::f32;
  else if constexpr (std::is_same_v<T, double>)
    return Type::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return Type::i64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return Type::i32;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return Type::u8;
  else
    static_assert(!sizeof(T),
                  "datasets hold float, double, std::int64_t, std::int32_t or std::uint8_t");
}

template <class T> struct Array {
  std::vector<T> data;
  Dims dims;
};

class File {
public:
  static File create(const std::string& path); ///< truncates an existing file
  static File open_read(const std::string& path);
  static File open_rw(const std::string& path);

  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File(); ///< closes quietly; call close() to see errors

  void flush();
  void close(); ///< checked close; the File is then empty
  /// The name used in error messages (the target path, also while atomic_write fills it in memory).
  const std::string& name() const { return name_; }

  /// True if every component of `path` exists ("/" always does).
  bool exists(const std::string& path) const;
  /// Creates the group and any missing parents; no-op if it is already a group.
  void create_group(const std::string& path);

  /// Creates a new dataset (and missing parent groups); dims' product must equal data.size().
  template <class T>
  void write(const std::string& path, const std::vector<T>& data, const Dims& dims) {
    write_raw(path, type_of<T>(), data.data(), data.size(), dims, false);
  }
  /// Rewrites an existing dataset of the same type and shape.
  template <class T>
  void overwrite(const std::string& path, const std::vector<T>& data, const Dims& dims) {
    write_raw(path, type_of<T>(), data.data(), data.size(), dims, true);
  }
  /// Creates a chunked dataset of shape (0, row_dims...) with an unlimited first dimension.
  template <class T> void create_extendible(const std::string& path, const Dims& row_dims = {}) {
    create_extendible_raw(path, type_of<T>(), row_dims);
  }
  /// Appends rows (data.size() must be a multiple of the row size); returns the new row count.
  template <class T>
  unsigned long long append(const std::string& path, const std::vector<T>& data) {
    return append_raw(path, type_of<T>(), data.data(), data.size());
  }

  Dims shape(const std::string& path) const;
  /// Throws IoError unless the dataset has this type and shape and the file stores all of its
  /// bytes (H5Dget_storage_size; this project writes uncompressed): checked before a read
  /// allocates, so a crafted or fill-valued shape never allocates what the file does not hold.
  void require_stored(const std::string& path, Type type, const Dims& dims) const;
  template <class T> Array<T> read(const std::string& path) const {
    Array<T> a{{}, shape(path)};
    require_stored(path, type_of<T>(), a.dims);
    a.data.resize(count(a.dims));
    read_raw(path, type_of<T>(), a.data.data(), a.dims);
    return a;
  }
  /// Reads a dataset that must have exactly the shape `dims`.
  template <class T> std::vector<T> read(const std::string& path, const Dims& dims) const {
    require_stored(path, type_of<T>(), dims);
    std::vector<T> data(count(dims));
    read_raw(path, type_of<T>(), data.data(), dims);
    return data;
  }

  // Scalar attributes on the object at `object` ("/" for the file). Strings are stored as
  // variable-length UTF-8 (h5py reads them as str); fixed-length strings are read too.
  // Setting an existing attribute replaces it.
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object, const std::string& name, const char* value) {
    set_attribute(object, name, std::string(value));
  }
  void set_attribute(const std::string& object, const std::string& name, double value);
  void set_attribute(const std::string& object, const std::string& name, std::int64_t value);
  void set_attribute(const std::string& object, const std::string& name, std::uint64_t value);
  /// int, bool, ...: convert explicitly so the stored type is a choice, not an accident.
  template <class T> void set_attribute(const std::string&, const std::string&, T) = delete;

  bool has_attribute(const std::string& object, const std::string& name) const;
  /// T: std::string, double, std::int64_t or std::uint64_t. Integers of either signedness are
  /// accepted when the value fits; anything else is an IoError naming the attribute.
  template <class T> T attribute(const std::string& object, const std::string& name) const {
    T value{};
    get_attribute(object, name, value);
    return value;
  }

  static unsigned long long count(const Dims& dims);

private:
  File(std::int64_t id, std::string name) : id_(id), name_(std::move(name)) {}
  /// A new file held in memory only (HDF5's core driver without a backing store).
  static File create_in_memory(const std::string& name);
  /// The bytes of the whole file (flushed first); for files made by create_in_memory.
  std::vector<char> image();
  friend void atomic_write(const std::string&, const std::string&,
                           const std::function<void(File&)>&);

  void write_raw(const std::string& path, Type type, const void* data, std::size_t size,
                 const Dims& dims, bool existing);
  void read_raw(const std::string& path, Type type, void* data, const Dims& dims) const;
  void create_extendible_raw(const std::string& path, Type type, const Dims& row_dims);
  unsigned long long append_raw(const std::string& path, Type type, const void* data,
                                std::size_t size);
  void get_attribute(const std::string& object, const std::string& name, std::string& v) const;
  void get_attribute(const std::string& object, const std::string& name, double& v) const;
  void get_attribute(const std::string& object, const std::string& name, std::int64_t& v) const;
  void get_attribute(const std::string& object, const std::string& name, std::uint64_t& v) const;

  std::int64_t id_ = -1; ///< hid_t
  std::string name_;
};

/// Writes `path` all-or-nothing: fill() builds the file in memory, so HDF5 itself never writes
/// to disk, and the bytes then go through lca::AtomicFile (temp file "<dir>/.<name>.tmp.<pid>",
/// fsync, rename, directory fsync). On any exception every HDF5 handle is closed, the temp file
/// is removed and the previous file at `path` is left untouched; a failed write is one IoError
/// line "cannot write <what> <path>: <reason from errno>", e.g. "no space left on device".
void atomic_write(const std::string& path, const std::string& what,
                  const std::function<void(File&)>& fill);
/// atomic_write(path, "HDF5 file", fill).
inline void atomic_write(const std::string& path, const std::function<void(File&)>& fill) {
  atomic_write(path, "HDF5 file", fill);
}

} // namespace lca::h5
