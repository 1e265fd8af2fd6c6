// lca::read_checkpoint (open + validate) on checkpoint files whose *contents* the fuzzer
// chooses: each root attribute is kept, dropped, given another value or stored as another
// type or shape, and each dataset likewise (dtype, shape, values including NaN/Inf, a group in
// its place). The files themselves are well-formed HDF5, written here with the HDF5 API.
//
// Why not mutate raw bytes: HDF5 1.10.8 (Debian 12) itself crashes on some corrupt files
// before returning to the caller (a use-after-free inside H5Aexists_by_name, reproduced with a
// plain C program; see tests/fuzz/README.md). That is HDF5's decoder, not this project's
// validation, and would make the CI run fail at random; truncated and non-HDF5 files are
// covered by the unit tests.
//
// After every input no HDF5 identifier may be left open: LeakSanitizer cannot see a leaked
// handle (HDF5's global tables keep it reachable), this check does.
#include "fuzz_common.hpp"
#include "lca/checkpoint.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

namespace {

enum class Kind { i64, u64, f64, str };
struct Field {
  const char* name;
  Kind kind;
  double value; // strings: ignored
  const char* text = "";
};

// A valid checkpoint of the schema in lca/checkpoint.hpp (nf 2, 1x4x4 images, k 2, s 2).
const Field kFields[] = {
    {"format", Kind::str, 0, "kokkos-lca-checkpoint"},
    {"format_version", Kind::i64, 1},
    {"nf", Kind::i64, 2},
    {"channels", Kind::i64, 1},
    {"height", Kind::i64, 4},
    {"width", Kind::i64, 4},
    {"kernel", Kind::i64, 2},
    {"stride", Kind::i64, 2},
    {"tau", Kind::f64, 100},
    {"dt", Kind::f64, 1},
    {"iterations", Kind::i64, 10},
    {"stop_tol", Kind::f64, 0},
    {"transfer_vthresh", Kind::f64, 0.1},
    {"transfer_amin", Kind::f64, 0},
    {"transfer_amax", Kind::f64, std::numeric_limits<double>::infinity()},
    {"transfer_ashift", Kind::f64, 0.1},
    {"transfer_vwidth", Kind::f64, 0},
    {"transfer_symmetric", Kind::i64, 0},
    {"transfer_l0_penalty", Kind::i64, 0},
    {"transfer_lambda", Kind::f64, 0.1},
    {"eta", Kind::f64, 0.01},
    {"momentum_tau", Kind::f64, 100},
    {"decay", Kind::f64, 0},
    {"seed", Kind::u64, 1},
    {"batch_size", Kind::i64, 4},
    {"epochs", Kind::i64, 1},
    {"max_images", Kind::i64, 0},
    {"shuffle", Kind::i64, 1},
    {"shuffle_seed", Kind::u64, 1},
    {"epoch", Kind::i64, 0},
    {"images_seen", Kind::i64, 4},
    {"batches", Kind::i64, 1},
    {"position_in_epoch", Kind::i64, 4},
    {"dataset_identity", Kind::str, 0, "fuzz"},
    {"software_version", Kind::str, 0, "0.1.0"},
    {"kokkos_backend", Kind::str, 0, "OpenMP"},
    {"preset", Kind::str, 0, "soft-nonneg"},
    {"elapsed_seconds", Kind::f64, 1.5},
};

#define ok(rc) ok_at(rc, __LINE__)
void ok_at(herr_t rc, int line) {
  if (rc < 0) { // writing the fuzzed file must work; only reading it may fail
    std::fprintf(stderr, "fuzz_checkpoint: HDF5 call at line %d failed\n", line);
    H5Eprint2(H5E_DEFAULT, stderr);
    std::abort();
  }
}

hid_t string_type(bool variable, std::size_t size) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  ok(H5Tset_size(t, variable ? H5T_VARIABLE : std::max<std::size_t>(size, 1)));
  ok(H5Tset_cset(t, H5T_CSET_UTF8));
  return t;
}

/// Writes attribute `name` on the root as `kind` (or, for kind == str, a string) in a dataspace
/// of `n` elements (1: scalar) holding `v` / `text`.
void put_attribute(hid_t file, const char* name, int kind, double v, const std::string& text,
                   bool fixed_string, int n) {
  const hsize_t dims[1] = {hsize_t(n)};
  const hid_t space = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, nullptr);
  hid_t type = -1, mem = -1;
  std::vector<unsigned char> buf;
  const auto fill = [&](const void* one, std::size_t size) {
    for (int i = 0; i < n; ++i)
      buf.insert(buf.end(), static_cast<const unsigned char*>(one),
                 static_cast<const unsigned char*>(one) + size);
  };
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  float f32 = float(v);
  const char* c_str = text.c_str();
  switch (kind) {
  case 0:
    i64 = std::isfinite(v) && std::fabs(v) < 9.2e18 ? std::int64_t(v) : -1;
    type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_INT64), fill(&i64, 8);
    break;
  case 1:
    u64 = std::isfinite(v) && v >= 0 && v < 1.8e19 ? std::uint64_t(v) : ~std::uint64_t(0);
    type = H5Tcopy(H5T_STD_U64LE), mem = H5Tcopy(H5T_NATIVE_UINT64), fill(&u64, 8);
    break;
  case 2:
    type = H5Tcopy(H5T_IEEE_F64LE), mem = H5Tcopy(H5T_NATIVE_DOUBLE), fill(&v, 8);
    break;
  case 3:
    type = H5Tcopy(H5T_IEEE_F32LE), mem = H5Tcopy(H5T_NATIVE_FLOAT), fill(&f32, 4);
    break;
  default:
    if (fixed_string) {
      type = string_type(false, text.size()), mem = H5Tcopy(type);
      std::string padded = text;
      padded.resize(std::max<std::size_t>(text.size(), 1));
      fill(padded.data(), padded.size());
    } else {
      type = string_type(true, 0), mem = H5Tcopy(type);
      fill(&c_str, sizeof c_str);
    }
  }
  const hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  ok(attr);
  if (n > 0)
    ok(H5Awrite(attr, mem, buf.data()));
  H5Aclose(attr), H5Tclose(mem), H5Tclose(type), H5Sclose(space);
}

void put_dataset(hid_t file, const char* name, FuzzedDataProvider& in) {
  const int op = in.ConsumeIntegralInRange(0, 7);
  if (op == 7) // missing
    return;
  if (op == 6) { // a group where the dataset should be
    const hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok(g);
    H5Gclose(g);
    return;
  }
  std::vector<hsize_t> dims = {2, 1, 2, 2};
  if (op == 1) { // another shape
    dims.resize(in.ConsumeIntegralInRange(0, 5));
    for (auto& d : dims)
      d = in.ConsumeIntegralInRange(0, 4);
  }
  hsize_t count = 1;
  for (auto d : dims)
    count *= d;
  const hid_t type = op == 2 ? H5T_NATIVE_DOUBLE : op == 3 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  std::vector<unsigned char> buf(count * H5Tget_size(type));
  for (std::size_t i = 0; i < buf.size(); i += H5Tget_size(type)) {
    float f = 0.25f * float(i);
    if (op == 4) { // any bits: NaN, Inf, subnormals
      const std::uint32_t bits = in.ConsumeIntegral<std::uint32_t>();
      std::memcpy(&f, &bits, 4);
    }
    if (type == H5T_NATIVE_FLOAT)
      std::memcpy(&buf[i], &f, 4);
    else if (type == H5T_NATIVE_DOUBLE) {
      const double d = f;
      std::memcpy(&buf[i], &d, 8);
    } else {
      const std::int64_t v = std::int64_t(i);
      std::memcpy(&buf[i], &v, 8);
    }
  }
  const hid_t space = dims.empty() ? H5Screate(H5S_SCALAR)
                                   : H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ok(set);
  if (count)
    ok(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
  H5Dclose(set), H5Sclose(space);
}

double fuzzed_number(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
  case 0:
    return double(in.ConsumeIntegral<std::int64_t>());
  case 1:
    return in.ConsumeFloatingPoint<double>();
  case 2: {
    constexpr double special[] = {0,
                                  -1,
                                  1,
                                  0.5,
                                  1e308,
                                  -0.0,
                                  2147483648.0,
                                  4294967296.0,
                                  std::numeric_limits<double>::infinity(),
                                  -std::numeric_limits<double>::infinity(),
                                  NAN};
    return special[in.ConsumeIntegralInRange<int>(0, std::size(special) - 1)];
  }
  default:
    return double(in.ConsumeIntegralInRange<int>(-3, 40));
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const std::string path = lca::fuzz::scratch() + "/checkpoint.h5";
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ok(file);
  for (const Field& f : kFields) {
    // 0 (also when the input has run out): as in a valid checkpoint.
    const int op = in.ConsumeIntegralInRange(0, 7);
    if (op == 1)
      continue; // missing
    const int kind = f.kind == Kind::i64   ? 0
                     : f.kind == Kind::u64 ? 1
                     : f.kind == Kind::f64 ? 2
                                           : 4;
    switch (op) {
    case 2: // another value of the same type
      put_attribute(file, f.name, kind, fuzzed_number(in), in.ConsumeRandomLengthString(64), false,
                    1);
      break;
    case 3: // another type (int64, uint64, float64, float32, string) with the same value
      put_attribute(file, f.name, in.ConsumeIntegralInRange(0, 4), f.value, f.text,
                    in.ConsumeBool(), 1);
      break;
    case 4: // an array instead of a scalar
      put_attribute(file, f.name, kind, f.value, f.text, false, in.ConsumeIntegralInRange(0, 3));
      break;
    case 5: // a fixed-length string
      put_attribute(file, f.name, 4, f.value, f.kind == Kind::str ? f.text : "", true, 1);
      break;
    case 6: // any type, any value
      put_attribute(file, f.name, in.ConsumeIntegralInRange(0, 4), fuzzed_number(in),
                    in.ConsumeRandomLengthString(64), in.ConsumeBool(), 1);
      break;
    default:
      put_attribute(file, f.name, kind, f.value, f.text, false, 1);
    }
  }
  put_dataset(file, "dictionary", in);
  put_dataset(file, "momentum", in);
  ok(H5Fclose(file));

  lca::fuzz::expect_errors_only([&] {
    const lca::Checkpoint ck = lca::read_checkpoint(path);
    const auto& g = ck.geometry;
    const std::size_t n = std::size_t(g.nf) * g.channels * g.kernel * g.kernel;
    if (ck.dictionary.size() != n || ck.momentum.size() != n)
      std::abort(); // an accepted checkpoint matches its geometry...
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isfinite(ck.dictionary[i]) || !std::isfinite(ck.momentum[i]))
        std::abort(); // ...and is finite
  });
  if (const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); open != 0) {
    std::fprintf(stderr, "fuzz_checkpoint: %zd HDF5 identifiers left open\n", open);
    std::abort();
  }
  return 0;
}
