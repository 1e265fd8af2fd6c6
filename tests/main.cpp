// Test main (ArborX style): MPI, then Kokkos, then GoogleTest; a NaN traps where it is made.
#include <Kokkos_Core.hpp>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cfenv>

int main(int argc, char* argv[]) {
  MPI_Init(&argc, &argv);
  feenableexcept(FE_INVALID); // before Kokkos starts its threads, which inherit it
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) { // one report per job
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
    }
    rc = RUN_ALL_TESTS();
  }
  MPI_Finalize();
  return rc;
}
