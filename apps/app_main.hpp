#pragma once
// What every app's main does (style.md): MPI init -> Kokkos -> run -> catch at the top,
// print one clear line, and end all ranks (MPI_Abort when there is more than one, so a
// failing rank never leaves the others hanging).
#include "lca/error.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <iostream>
#include <string>

namespace lca::app {

inline int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

/// Parses the flags (every rank sees the same ones, so all agree). Returns -1 to go on, or
/// the exit code: 0 after --help, 2 after a bad flag (one line on stderr from rank 0).
inline int parse(CLI::App& app, const char* name, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return rank() == 0 ? app.exit(e) : 0;
  } catch (const CLI::CallForAllHelp& e) {
    return rank() == 0 ? app.exit(e) : 0;
  } catch (const CLI::ParseError& e) {
    if (rank() == 0)
      std::cerr << name << ": error: " << e.what() << std::endl;
    return e.get_exit_code() == 0 ? 0 : 2;
  }
}

/// body(argc, argv) parses its own flags with CLI11 and returns the exit code.
template <class Body> int run(const char* name, int argc, char** argv, Body body) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int rc = 0;
  std::string error;
  try {
    Kokkos::ScopeGuard kokkos(argc, argv);
    rc = body(argc, argv);
  } catch (const std::exception& e) {
    error = e.what();
    rc = 1;
  }
  if (!error.empty()) {
    std::cerr << name << ": error: " << error
              << (size > 1 ? " (rank " + std::to_string(rank()) + ")" : std::string()) << std::endl;
    if (size > 1)
      MPI_Abort(MPI_COMM_WORLD, rc);
  }
  MPI_Finalize();
  return rc;
}

} // namespace lca::app
