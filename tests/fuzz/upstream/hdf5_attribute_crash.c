/* HDF5 1.10.8 (Debian 12) crashes on hdf5-1.10.8-attribute-crash.h5, a checkpoint with a few
 * bytes changed, inside the public API: H5Aexists_by_name on "transfer_vthresh" reads freed
 * memory (a use-after-free; a SEGV under AddressSanitizer, garbage without it). Found by
 * fuzzing lca::read_checkpoint; nothing of kokkos-lca is involved. Build and run:
 *   clang -fsanitize=address hdf5_attribute_crash.c \
 *     $(pkg-config --cflags --libs hdf5-openmpi) -o crash && ./crash hdf5-1.10.8-attribute-crash.h5 */
#include <hdf5.h>
#include <stdio.h>

int main(int argc, char** argv) {
  const char* names[] = {"nf", "tau", "dt", "iterations", "stop_tol", "transfer_vthresh", 0};
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(argc > 1 ? argv[1] : "hdf5-1.10.8-attribute-crash.h5", H5F_ACC_RDONLY,
                    H5P_DEFAULT);
  for (int i = 0; names[i]; ++i) {
    printf("%s: exists %d\n", names[i], (int)H5Aexists_by_name(f, "/", names[i], H5P_DEFAULT));
    fflush(stdout);
  }
  H5Fclose(f);
  return 0;
}
