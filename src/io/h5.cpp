#include "lca/h5.hpp"

#include "lca/atomic_file.hpp"
#include "lca/error.hpp"

#include <hdf5.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

static_assert(std::is_same_v<hsize_t, unsigned long long>, "h5.hpp's Dims must be hsize_t");
static_assert(std::is_same_v<hid_t, std::int64_t>, "h5.hpp stores the file id as hid_t");

namespace lca::h5 {
namespace {

void init() {
  // Failures come back as exceptions; HDF5's stack dump on stderr would only add noise.
  static const herr_t silenced = H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  (void)silenced;
}

/// The innermost message on HDF5's error stack (the actual cause), then clears the stack.
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* out) -> herr_t {
        if (n == 0 && err->desc)
          *static_cast<std::string*>(out) = err->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason;
}

[[noreturn]] void hdf5_failed(const std::string& label, const std::string& what) {
  const std::string reason = hdf5_reason();
  throw IoError(label + ": " + what + (reason.empty() ? "" : " (" + reason + ")"));
}

/// HDF5 returns a negative hid_t / herr_t / htri_t on failure.
template <class R> R check(R rc, const std::string& label, const std::string& what) {
  if (rc < 0)
    hdf5_failed(label, what);
  return rc;
}

herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
  case H5I_FILE:
    return H5Fclose(id);
  case H5I_GROUP:
    return H5Gclose(id);
  case H5I_DATASET:
    return H5Dclose(id);
  case H5I_ATTR:
    return H5Aclose(id);
  case H5I_DATASPACE:
    return H5Sclose(id);
  case H5I_DATATYPE:
    return H5Tclose(id);
  case H5I_GENPROP_LST:
    return H5Pclose(id);
  default:
    return H5Idec_ref(id);
  }
}

/// Owns one identifier; the constructor checks it was created.
class Handle {
public:
  Handle(hid_t id, const std::string& label, const std::string& what)
      : id_(check(id, label, what)) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (id_ >= 0)
      close_id(id_);
  }
  operator hid_t() const { return id_; }

private:
  hid_t id_;
};

hid_t native(Type type) {
  switch (type) {
  case Type::f32:
    return H5T_NATIVE_FLOAT;
  case Type::f64:
    return H5T_NATIVE_DOUBLE;
  case Type::i64:
    return H5T_NATIVE_INT64;
  case Type::i32:
    return H5T_NATIVE_INT32;
  case Type::u8:
    return H5T_NATIVE_UINT8;
  }
  throw InvalidArgument("h5: unknown element type");
}

const char* type_name(Type type) {
  switch (type) {
  case Type::f32:
    return "float32";
  case Type::f64:
    return "float64";
  case Type::i64:
    return "int64";
  case Type::i32:
    return "int32";
  case Type::u8:
    return "uint8";
  }
  throw InvalidArgument("h5: unknown element type");
}

/// "float32", "uint8", "string", ...: comparable with type_name() to check a stored type. A failed
/// query yields a name no Type has, so the caller still rejects the object.
std::string describe(hid_t type) {
  const std::string bits = std::to_string(8 * H5Tget_size(type));
  switch (H5Tget_class(type)) {
  case H5T_FLOAT:
    return "float" + bits;
  case H5T_INTEGER:
    return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
  case H5T_STRING:
    return "string";
  default:
    return "an unsupported type";
  }
}

std::string show(const Dims& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

std::string dataset_what(const std::string& path) {
  return "dataset '" + path + "'";
}

/// Link-creation list that makes missing parent groups, so "results/points" just works.
Handle make_parents(const std::string& label) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), label, "cannot create a property list");
  check(H5Pset_create_intermediate_group(lcpl, 1), label, "cannot set a property list");
  return lcpl;
}

Dims dims_of(hid_t dataset, const std::string& label, const std::string& what) {
  Handle space(H5Dget_space(dataset), label, "cannot get the shape of " + what);
  const int rank =
      check(H5Sget_simple_extent_ndims(space), label, "cannot get the rank of " + what);
  Dims dims(rank);
  check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), label,
        "cannot get the shape of " + what);
  return dims;
}

/// Opens a dataset whose stored element type must be exactly `type`.
Handle open_dataset(hid_t file, const std::string& label, const std::string& path, Type type) {
  const std::string what = dataset_what(path);
  Handle dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), label, "cannot open " + what);
  Handle stored(H5Dget_type(dataset), label, "cannot get the type of " + what);
  const std::string actual = describe(stored);
  if (actual != type_name(type))
    throw IoError(label + ": " + what + " holds " + actual + ", expected " + type_name(type));
  return dataset;
}

/// Pre-opens a path with POSIX so that a missing file or a permission problem is reported with
/// strerror instead of HDF5's generic "unable to open file".
void probe(const std::string& path, int flags, const std::string& label, const char* verb) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0666);
  if (fd < 0)
    throw IoError(label + ": cannot " + verb + " (" + std::strerror(errno) + ")");
  ::close(fd);
}

/// STRONG closing degree: H5Fclose really closes the file and every object still open in it.
Handle file_access(const std::string& label) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), label, "cannot create a property list");
  check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), label, "cannot set a property list");
  return fapl;
}

std::string attribute_what(const std::string& object, const std::string& name) {
  return "attribute '" + name + "' on '" + object + "'";
}

void put_attribute(hid_t file, const std::string& label, const std::string& object,
                   const std::string& name, hid_t type, const void* value) {
  const std::string what = attribute_what(object, name);
  if (check(H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT), label,
            "cannot look up " + what) > 0)
    check(H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT), label,
          "cannot replace " + what);
  Handle space(H5Screate(H5S_SCALAR), label, "cannot create a dataspace");
  Handle attr(H5Acreate_by_name(file, object.c_str(), name.c_str(), type, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
              label, "cannot create " + what);
  check(H5Awrite(attr, type, value), label, "cannot write " + what);
}

Handle variable_string(H5T_cset_t cset, const std::string& label) {
  Handle type(H5Tcopy(H5T_C_S1), label, "cannot create a string type");
  check(H5Tset_size(type, H5T_VARIABLE), label, "cannot create a string type");
  check(H5Tset_cset(type, cset), label, "cannot create a string type");
  return type;
}

/// An open scalar attribute with its stored type.
struct Attribute {
  Handle attr, type;
  std::string what;
};

Attribute open_attribute(hid_t file, const std::string& label, const std::string& object,
                         const std::string& name) {
  const std::string what = attribute_what(object, name);
  if (check(H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT), label,
            "cannot look up " + what) == 0)
    throw IoError(label + ": " + what + " is missing");
  Handle attr(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), label,
              "cannot open " + what);
  Handle space(H5Aget_space(attr), label, "cannot get the shape of " + what);
  if (check(H5Sget_simple_extent_npoints(space), label, "cannot get the shape of " + what) != 1)
    throw IoError(label + ": " + what + " is not a single value");
  Handle type(H5Aget_type(attr), label, "cannot get the type of " + what);
  return {std::move(attr), std::move(type), what};
}

[[noreturn]] void wrong_type(const std::string& label, const Attribute& a, const char* expected) {
  throw IoError(label + ": " + a.what + " is " + describe(a.type) + ", expected " + expected);
}

/// Integers of either signedness are read through a 64-bit type of the same signedness, then
/// range-checked, so an h5py-written int64 seed still reads as uint64.
template <class T> T read_integer(const std::string& label, const Attribute& a) {
  if (H5Tget_class(a.type) != H5T_INTEGER)
    wrong_type(label, a, "an integer");
  const auto out_of_range = [&](auto v) {
    return IoError(label + ": " + a.what + " = " + std::to_string(v) + " is out of range");
  };
  if (check(H5Tget_sign(a.type), label, "cannot get the type of " + a.what) == H5T_SGN_NONE) {
    std::uint64_t v = 0;
    check(H5Aread(a.attr, H5T_NATIVE_UINT64, &v), label, "cannot read " + a.what);
    if (v > std::uint64_t(std::numeric_limits<T>::max()))
      throw out_of_range(v);
    return T(v);
  }
  std::int64_t v = 0;
  check(H5Aread(a.attr, H5T_NATIVE_INT64, &v), label, "cannot read " + a.what);
  if (std::is_unsigned_v<T> && v < 0)
    throw out_of_range(v);
  return T(v);
}

/// Opens an existing file, telling "not HDF5 at all" apart from a damaged or truncated one.
hid_t open_id(const std::string& path, unsigned flags) {
  init();
  probe(path, flags == H5F_ACC_RDWR ? O_RDWR : O_RDONLY, path, "open");
  Handle fapl = file_access(path);
  const hid_t id = H5Fopen(path.c_str(), flags, fapl);
  if (id >= 0)
    return id;
  const std::string reason = hdf5_reason();
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is_hdf5 > 0)
    throw IoError(path + ": truncated, damaged or locked HDF5 file (" + reason + ")");
  throw IoError(path + ": not an HDF5 file");
}

} // namespace

unsigned long long File::count(const Dims& dims) {
  unsigned long long n = 1;
  for (auto d : dims)
    n *= d;
  return n;
}

File File::create(const std::string& path) {
  init();
  probe(path, O_WRONLY | O_CREAT | O_TRUNC, path, "create");
  Handle fapl = file_access(path);
  const hid_t id = check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), path,
                         "cannot create an HDF5 file");
  return File(id, path);
}

File File::create_in_memory(const std::string& name) {
  init();
  Handle fapl = file_access(name);
  // Grows in 1 MiB steps; no backing store: H5Fcreate opens nothing on disk.
  check(H5Pset_fapl_core(fapl, std::size_t(1) << 20, 0), name, "cannot set a property list");
  const hid_t id = check(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), name,
                         "cannot create an HDF5 file in memory");
  return File(id, name);
}

std::vector<char> File::image() {
  flush();
  const ssize_t size =
      check(H5Fget_file_image(id_, nullptr, 0), name_, "cannot get the file image");
  std::vector<char> bytes(std::size_t(size), 0);
  check(H5Fget_file_image(id_, bytes.data(), bytes.size()), name_, "cannot get the file image");
  return bytes;
}

File File::open_read(const std::string& path) {
  return File(open_id(path, H5F_ACC_RDONLY), path);
}

File File::open_rw(const std::string& path) {
  return File(open_id(path, H5F_ACC_RDWR), path);
}

File::File(File&& other) noexcept
    : id_(std::exchange(other.id_, H5I_INVALID_HID)), name_(std::move(other.name_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0)
      H5Fclose(id_);
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    name_ = std::move(other.name_);
  }
  return *this;
}

File::~File() {
  if (id_ >= 0)
    H5Fclose(id_);
}

void File::flush() {
  check(H5Fflush(id_, H5F_SCOPE_GLOBAL), name_, "cannot flush");
}

void File::close() {
  if (id_ >= 0)
    check(H5Fclose(std::exchange(id_, H5I_INVALID_HID)), name_, "cannot close");
}

bool File::exists(const std::string& path) const {
  // H5Lexists needs every parent to exist, so walk the path one component at a time.
  for (std::size_t end = 0; end != std::string::npos;) {
    end = path.find('/', end + 1);
    const std::string prefix = path.substr(0, end);
    if (prefix.empty() || prefix == "/")
      continue;
    if (check(H5Lexists(id_, prefix.c_str(), H5P_DEFAULT), name_,
              "cannot look up '" + prefix + "'") == 0)
      return false;
    if (end == std::string::npos)
      break;
    Handle object(H5Oopen(id_, prefix.c_str(), H5P_DEFAULT), name_, "cannot open '" + prefix + "'");
    if (H5Iget_type(object) != H5I_GROUP)
      return false; // "dataset/child" cannot exist
  }
  return true;
}

void File::create_group(const std::string& path) {
  if (exists(path)) {
    Handle object(H5Oopen(id_, path.c_str(), H5P_DEFAULT), name_, "cannot open '" + path + "'");
    if (H5Iget_type(object) != H5I_GROUP)
      throw IoError(name_ + ": '" + path + "' exists and is not a group");
    return;
  }
  Handle lcpl = make_parents(name_);
  Handle group(H5Gcreate2(id_, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), name_,
               "cannot create group '" + path + "'");
}

void File::write_raw(const std::string& path, Type type, const void* data, std::size_t size,
                     const Dims& dims, bool existing) {
  const std::string what = dataset_what(path);
  if (count(dims) != size)
    throw InvalidArgument(name_ + ": " + what + ": " + std::to_string(size) +
                          " values do not fill the shape " + show(dims));
  if (existing) {
    Handle dataset = open_dataset(id_, name_, path, type);
    const Dims actual = dims_of(dataset, name_, what);
    if (actual != dims)
      throw IoError(name_ + ": " + what + " has shape " + show(actual) +
                    ", cannot overwrite with " + show(dims));
    if (size)
      check(H5Dwrite(dataset, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name_,
            "cannot write " + what);
    return;
  }
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), name_,
               "cannot create the dataspace of " + what);
  Handle lcpl = make_parents(name_);
  Handle dataset(H5Dcreate2(id_, path.c_str(), native(type), space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
                 name_, "cannot create " + what);
  if (size)
    check(H5Dwrite(dataset, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name_,
          "cannot write " + what);
}

Dims File::shape(const std::string& path) const {
  const std::string what = dataset_what(path);
  Handle dataset(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), name_, "cannot open " + what);
  return dims_of(dataset, name_, what);
}

void File::require_stored(const std::string& path, Type type, const Dims& dims) const {
  const std::string what = dataset_what(path);
  Handle dataset = open_dataset(id_, name_, path, type);
  const Dims actual = dims_of(dataset, name_, what);
  if (actual != dims)
    throw IoError(name_ + ": " + what + " has shape " + show(actual) + ", expected " + show(dims));
  const unsigned long long stored = H5Dget_storage_size(dataset), size = H5Tget_size(native(type));
  if (count(dims) > stored / size)
    throw IoError(name_ + ": " + what + " has " + std::to_string(count(dims)) +
                  " values but the file stores " + std::to_string(stored) + " bytes of it");
}

void File::read_raw(const std::string& path, Type type, void* data, const Dims& dims) const {
  const std::string what = dataset_what(path);
  Handle dataset = open_dataset(id_, name_, path, type);
  const Dims actual = dims_of(dataset, name_, what);
  if (actual != dims)
    throw IoError(name_ + ": " + what + " has shape " + show(actual) + ", expected " + show(dims));
  if (count(dims))
    check(H5Dread(dataset, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name_,
          "cannot read " + what);
}

void File::create_extendible_raw(const std::string& path, Type type, const Dims& row_dims) {
  const std::string what = dataset_what(path);
  const unsigned long long row = count(row_dims);
  if (row == 0)
    throw InvalidArgument(name_ + ": " + what + ": empty row shape " + show(row_dims));
  // ~64 KiB chunks: large enough for efficient I/O, small enough for a file grown row by row.
  const unsigned long long row_bytes = row * H5Tget_size(native(type));
  Dims dims{0}, max_dims{H5S_UNLIMITED}, chunk{std::max(1ull, (1ull << 16) / row_bytes)};
  for (auto d : row_dims) {
    dims.push_back(d);
    max_dims.push_back(d);
    chunk.push_back(d);
  }
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), name_, "cannot create a property list");
  check(H5Pset_chunk(dcpl, int(chunk.size()), chunk.data()), name_,
        "cannot set the chunk shape of " + what);
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), max_dims.data()), name_,
               "cannot create the dataspace of " + what);
  Handle lcpl = make_parents(name_);
  Handle dataset(H5Dcreate2(id_, path.c_str(), native(type), space, lcpl, dcpl, H5P_DEFAULT), name_,
                 "cannot create " + what);
}

unsigned long long File::append_raw(const std::string& path, Type type, const void* data,
                                    std::size_t size) {
  const std::string what = dataset_what(path);
  Handle dataset = open_dataset(id_, name_, path, type);
  Dims dims = dims_of(dataset, name_, what);
  const unsigned long long row = dims.empty() ? 0 : count(Dims(dims.begin() + 1, dims.end()));
  if (row == 0 || size % row != 0)
    throw InvalidArgument(name_ + ": " + what + " of shape " + show(dims) + ": cannot append " +
                          std::to_string(size) + " values as whole rows");
  Dims start(dims.size(), 0), block = dims;
  start[0] = dims[0];
  block[0] = size / row;
  if (block[0] == 0)
    return dims[0];
  dims[0] += block[0];
  check(H5Dset_extent(dataset, dims.data()), name_, "cannot extend " + what);
  Handle file_space(H5Dget_space(dataset), name_, "cannot get the shape of " + what);
  check(
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr),
      name_, "cannot select rows of " + what);
  Handle memory_space(H5Screate_simple(int(block.size()), block.data(), nullptr), name_,
                      "cannot create a dataspace");
  check(H5Dwrite(dataset, native(type), memory_space, file_space, H5P_DEFAULT, data), name_,
        "cannot append to " + what);
  return dims[0];
}

void File::set_attribute(const std::string& object, const std::string& name,
                         const std::string& value) {
  Handle type = variable_string(H5T_CSET_UTF8, name_);
  const char* c_str = value.c_str();
  put_attribute(id_, name_, object, name, type, &c_str);
}

void File::set_attribute(const std::string& object, const std::string& name, double value) {
  put_attribute(id_, name_, object, name, H5T_NATIVE_DOUBLE, &value);
}

void File::set_attribute(const std::string& object, const std::string& name, std::int64_t value) {
  put_attribute(id_, name_, object, name, H5T_NATIVE_INT64, &value);
}

void File::set_attribute(const std::string& object, const std::string& name, std::uint64_t value) {
  put_attribute(id_, name_, object, name, H5T_NATIVE_UINT64, &value);
}

bool File::has_attribute(const std::string& object, const std::string& name) const {
  return check(H5Aexists_by_name(id_, object.c_str(), name.c_str(), H5P_DEFAULT), name_,
               "cannot look up " + attribute_what(object, name)) > 0;
}

void File::get_attribute(const std::string& object, const std::string& name,
                         std::string& value) const {
  const Attribute a = open_attribute(id_, name_, object, name);
  if (H5Tget_class(a.type) != H5T_STRING)
    wrong_type(name_, a, "a string");
  if (check(H5Tis_variable_str(a.type), name_, "cannot get the type of " + a.what) > 0) {
    const H5T_cset_t cset = H5Tget_cset(a.type);
    Handle type = variable_string(check(cset, name_, "cannot get the type of " + a.what), name_);
    char* c_str = nullptr;
    check(H5Aread(a.attr, type, &c_str), name_, "cannot read " + a.what);
    value = c_str ? c_str : "";
    Handle space(H5Screate(H5S_SCALAR), name_, "cannot create a dataspace");
    // H5Dvlen_reclaim was renamed in 1.12 (Debian's 1.10.8 declares H5Treclaim but lacks it).
#if H5_VERSION_GE(1, 12, 0)
    check(H5Treclaim(type, space, H5P_DEFAULT, &c_str), name_, "cannot free " + a.what);
#else
    check(H5Dvlen_reclaim(type, space, H5P_DEFAULT, &c_str), name_, "cannot free " + a.what);
#endif
    return;
  }
  // Fixed length: read the stored bytes, then drop the NUL / space padding.
  const std::size_t size = H5Tget_size(a.type);
  if (size == 0)
    hdf5_failed(name_, "cannot get the size of " + a.what);
  value.assign(size, '\0');
  check(H5Aread(a.attr, a.type, value.data()), name_, "cannot read " + a.what);
  value.resize(std::strlen(value.c_str()));
  if (check(H5Tget_strpad(a.type), name_, "cannot get the type of " + a.what) == H5T_STR_SPACEPAD)
    value.erase(value.find_last_not_of(' ') + 1);
}

void File::get_attribute(const std::string& object, const std::string& name, double& value) const {
  const Attribute a = open_attribute(id_, name_, object, name);
  if (H5Tget_class(a.type) != H5T_FLOAT)
    wrong_type(name_, a, "a floating-point number");
  check(H5Aread(a.attr, H5T_NATIVE_DOUBLE, &value), name_, "cannot read " + a.what);
}

void File::get_attribute(const std::string& object, const std::string& name,
                         std::int64_t& value) const {
  value = read_integer<std::int64_t>(name_, open_attribute(id_, name_, object, name));
}

void File::get_attribute(const std::string& object, const std::string& name,
                         std::uint64_t& value) const {
  value = read_integer<std::uint64_t>(name_, open_attribute(id_, name_, object, name));
}

void atomic_write(const std::string& path, const std::string& what,
                  const std::function<void(File&)>& fill) {
  // The temp file exists from the start, so a kill while the content is built leaves a stale
  // temp file (as a kill during the write would), never a damaged target.
  AtomicFile out(path, what);
  std::vector<char> bytes;
  {
    File file = File::create_in_memory(path); // closed however fill() ends
    fill(file);
    bytes = file.image();
    file.close();
  }
  out.write(bytes.data(), bytes.size());
  out.commit();
}

} // namespace lca::h5
