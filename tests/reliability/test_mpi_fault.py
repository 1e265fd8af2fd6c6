"""An error on one MPI rank ends the whole job: one clear message, a non-zero exit status,
within seconds (no rank left waiting in a collective). lca-train's hidden test-only flag
--inject-fault R makes rank R throw lca::Error just before training, while the other rank is
already blocked in training's first MPI_Allreduce.
Run: python3 tests/reliability/test_mpi_fault.py [Fault.test_name] (LCA_BIN_DIR = the apps)."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps"))
from common import ENV, MPIRUN, app, tmpdir  # noqa: E402

LIMIT = 30  # seconds; a hang would run into ctest's timeout (60 s) instead


class Fault(unittest.TestCase):
    def run_fault(self, rank):
        out = os.path.join(tmpdir(), "ck.h5")
        cmd = [*MPIRUN, "-np", "2", app("lca-train"), "--inject-fault", str(rank), "--subset", "32",
               "--nf", "4", "--iterations", "5", "--images", "16", "--progress", "0", "-o", out]
        start = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT, env=ENV)
        seconds = time.monotonic() - start
        print(f"rank {rank} fails: exit {p.returncode} after {seconds:.1f} s")
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertLess(seconds, LIMIT)
        ours = [line for line in p.stderr.splitlines() if line.startswith("lca-train:")]
        self.assertEqual(ours, [f"lca-train: error: injected fault (--inject-fault) (rank {rank})"],
                         p.stderr)
        self.assertFalse(os.path.exists(out))  # it never got to write a checkpoint

    def test_rank1_fails_while_rank0_waits(self):
        self.run_fault(1)

    def test_rank0_fails_while_rank1_waits(self):
        self.run_fault(0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
