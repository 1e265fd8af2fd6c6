#pragma once
// MPI for the distributed layer (drivers and apps; the kernel layer has none): every MPI call
// in src/ and apps/ goes through check(), so a failure is an lca::Error with MPI's own message
// (MPI_Abort excepted: it does not return; and MPI_Comm_free in a destructor, which has no one
// to report to).
#include "lca/error.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

namespace lca::mpi {

/// Throws Error("<what> failed: <MPI's error string>") unless rc is MPI_SUCCESS.
inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS)
    return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  const std::string reason = MPI_Error_string(rc, text, &len) == MPI_SUCCESS
                                 ? std::string(text, std::size_t(len))
                                 : "MPI error code " + std::to_string(rc);
  throw Error(std::string(what) + " failed: " + reason);
}

inline int rank(MPI_Comm comm) {
  int r = 0;
  check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}

inline int size(MPI_Comm comm) {
  int n = 1;
  check(MPI_Comm_size(comm, &n), "MPI_Comm_size");
  return n;
}

/// The MPI datatype of T.
template <class T> MPI_Datatype datatype() {
  if constexpr (std::is_same<T, float>::value)
    return MPI_FLOAT;
  else if constexpr (std::is_same<T, double>::value)
    return MPI_DOUBLE;
  else if constexpr (std::is_same<T, int>::value)
    return MPI_INT;
  else if constexpr (std::is_same<T, std::int64_t>::value)
    return MPI_INT64_T;
  else
    static_assert(std::is_same<T, char>::value, "no MPI datatype for this type");
  return MPI_CHAR;
}

/// In-place sum of n values of T over comm (Learner's gradient reduction).
template <class T> std::function<void(T*, std::size_t)> sum_in_place(MPI_Comm comm) {
  return [comm](T* data, std::size_t n) {
    check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), datatype<T>(), MPI_SUM, comm),
          "MPI_Allreduce of the dictionary gradient");
  };
}

/// Rank 0 runs decide() and every rank returns its answer (a bool or a string): decisions
/// that steer collectives, such as whether a file exists, which ranks could see differently.
template <class Decide> auto from_rank0(MPI_Comm comm, const Decide& decide) {
  using T = decltype(decide());
  static_assert(std::is_same<T, bool>::value || std::is_same<T, std::string>::value,
                "from_rank0 broadcasts a bool or a string");
  T answer{};
  if (rank(comm) == 0)
    answer = decide();
  if constexpr (std::is_same<T, bool>::value) {
    int flag = answer;
    check(MPI_Bcast(&flag, 1, MPI_INT, 0, comm), "MPI_Bcast");
    answer = flag != 0;
  } else {
    int n = int(answer.size());
    check(MPI_Bcast(&n, 1, MPI_INT, 0, comm), "MPI_Bcast");
    answer.resize(std::size_t(n));
    check(MPI_Bcast(answer.data(), n, MPI_CHAR, 0, comm), "MPI_Bcast");
  }
  return answer;
}

/// Rank r's share [first, first + count) of n items split over ranks in rank order, sizes
/// differing by at most one (a rank gets none when n < ranks).
struct Slice {
  std::int64_t first, count;
};
inline Slice slice(std::int64_t n, int rank, int ranks) {
  const std::int64_t first = n * rank / ranks;
  return {first, n * (rank + 1) / ranks - first};
}

} // namespace lca::mpi
