"""Kill-anywhere: SIGKILL lca-train and lca-scaling at random (seeded) moments, including while
a checkpoint or the sweep file is being written (the atomic writer's temp file
".<name>.tmp.<pid>" exists), check after every kill that each checkpoint / sweep file on disk
opens and is complete, resume, and check the end result equals an uninterrupted run bit for
bit (OMP_NUM_THREADS=1). Stale temp files of killed runs are left where they are: they must
never break a resume.
Run: python3 tests/reliability/test_kill_anywhere.py [Kill.test_name]
(LCA_BIN_DIR = the apps folder; LCA_KILL_SEED picks the kill moments, default 1)."""
import os
import random
import re
import signal
import subprocess
import sys
import time
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps"))
from common import ENV, app, run, tmpdir  # noqa: E402

SEED = int(os.environ.get("LCA_KILL_SEED", "1"))
KILLS = 12  # kill points per test
TEMP = re.compile(r"^\..+\.tmp\.\d+$")  # lca::AtomicFile's temp files (every writer)

# lca/checkpoint.hpp's schema: every root attribute a checkpoint must have.
CHECKPOINT_ATTRS = """format format_version nf channels height width kernel stride tau dt iterations
stop_tol transfer_vthresh transfer_amin transfer_amax transfer_ashift transfer_vwidth
transfer_symmetric transfer_l0_penalty transfer_lambda eta momentum_tau decay seed batch_size epochs
max_images shuffle shuffle_seed epoch images_seen batches position_in_epoch dataset_identity
software_version kokkos_backend preset elapsed_seconds""".split()

ENV1 = dict(ENV, OMP_NUM_THREADS="1")


def temp_files(root):
    found = []
    for d, _, files in os.walk(root):
        found += [os.path.join(d, f) for f in files if TEMP.match(f)]
    return found


def check_checkpoint(test, path, batch):
    """The file opens with h5py and holds a complete, finite, self-consistent checkpoint."""
    with h5py.File(path, "r") as f:
        missing = [a for a in CHECKPOINT_ATTRS if a not in f.attrs]
        test.assertEqual(missing, [], path)
        test.assertEqual(f.attrs["format"], "kokkos-lca-checkpoint")
        a = f.attrs
        shape = (a["nf"], a["channels"], a["kernel"], a["kernel"])
        for name in ("dictionary", "momentum"):
            v = f[name][...]
            test.assertEqual(v.shape, shape, f"{path}:{name}")
            test.assertEqual(v.dtype, np.float32)
            test.assertTrue(np.isfinite(v).all(), f"{path}:{name}")
        test.assertGreater(a["batches"], 0)
        test.assertLessEqual(a["images_seen"], a["batches"] * batch)
        return int(a["batches"])


class Killer:
    """Starts a command and SIGKILLs it either after a random delay or as soon as an atomic
    write's temp file appears under `root` (on the k-th one it sees)."""

    def __init__(self, test, rng, root, typical_seconds):
        self.test, self.rng, self.root, self.typical = test, rng, root, typical_seconds
        self.kills = {"timed": 0, "mid-write": 0}
        self.stale = 0

    def run_once(self, cmd):
        """Returns True when the command ran to completion (no kill)."""
        before = set(temp_files(self.root))
        p = subprocess.Popen(cmd, env=ENV1, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Up to a quarter of an uninterrupted run: from start-up (nothing written yet) into
        # training, while leaving work for the next run.
        deadline = time.monotonic() + self.rng.uniform(0.05, self.typical / 4)
        if self.rng.random() < 0.5:  # kill as soon as the k-th write's temp file shows up
            wanted, seen, present = self.rng.randint(1, 3), 0, set()
            give_up = time.monotonic() + self.typical / 2  # (if the polling misses them all)
            while p.poll() is None and time.monotonic() < give_up:
                now = set(temp_files(self.root)) - before  # busy poll: a write takes ~ms
                seen += len(now - present)  # a writer reuses its temp name: count appearances
                present = now
                if seen >= wanted:
                    break
        else:
            while p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=300)
        if p.returncode == 0:
            return True
        self.test.assertEqual(p.returncode, -signal.SIGKILL, err)
        stale = set(temp_files(self.root)) - before
        self.stale += len(stale)
        self.kills["mid-write" if stale else "timed"] += 1
        return False

    def total(self):
        return sum(self.kills.values())


class Kill(unittest.TestCase):
    def setUp(self):
        self.tmp = tmpdir()

    def report(self, what, killer, seconds):
        print(f"{what}: survived {killer.total()} kills ({killer.kills['mid-write']} while a "
              f"checkpoint/sweep file was being written, {killer.kills['timed']} at random "
              f"moments); {killer.stale} stale temp files left by kills; seed {SEED}; "
              f"{seconds:.1f} s", flush=True)

    def test_train(self):
        self.kill_train(["--subset", "64", "--epochs", "12"], "lca-train")

    def test_train_epochs_auto(self):
        """--epochs auto: kills also land in the validation after an epoch; the training curve
        must come out the same too (its seconds excepted)."""
        ck = self.kill_train(["--subset", "72", "--validation", "8", "--epochs", "auto",
                              "--eta-decay-epochs", "1", "--plateau", "0.002", "--max-epochs", "10"],
                             "lca-train --epochs auto")
        with h5py.File(f"{self.tmp}/ref/ck.h5") as a, h5py.File(ck) as b:
            self.assertGreater(a["training_curve"].shape[0], 2)
            np.testing.assert_array_equal(a["training_curve"][:, :5], b["training_curve"][:, :5])
            self.assertEqual(a.attrs["plateau"], b.attrs["plateau"])

    def kill_train(self, run_args, what):
        """Kills and resumes lca-train with run_args until it is done; returns the checkpoint."""
        batch = 8
        args = [app("lca-train"), *run_args, "--nf", "16", "--iterations", "150", "--batch",
                str(batch), "--checkpoint-every", "1", "--progress", "0"]
        ref = f"{self.tmp}/ref/ck.h5"
        t0 = time.monotonic()
        run([*args, "-o", ref], env=ENV1)
        typical = time.monotonic() - t0
        ck = f"{self.tmp}/cut/ck.h5"
        os.makedirs(os.path.dirname(ck))
        killer = Killer(self, random.Random(SEED), os.path.dirname(ck), typical)
        t0 = time.monotonic()
        last = 0
        done = False
        while not done:
            cmd = [*args, "-o", ck] + (["--resume", ck] if os.path.exists(ck) else [])
            if killer.total() >= KILLS:
                run(cmd, env=ENV1)  # the last run goes to the end
                break
            done = killer.run_once(cmd)
            if os.path.exists(ck):
                batches = check_checkpoint(self, ck, batch)
                self.assertGreaterEqual(batches, last)  # never goes back
                last = batches
        self.report(what, killer, time.monotonic() - t0)
        self.assertGreaterEqual(killer.total(), KILLS // 2)
        self.assertGreaterEqual(killer.kills["mid-write"], 1)
        with h5py.File(ref) as a, h5py.File(ck) as b:
            for name in ("dictionary", "momentum"):
                np.testing.assert_array_equal(a[name][...], b[name][...])
            for name in ("epoch", "images_seen", "batches", "position_in_epoch"):
                self.assertEqual(a.attrs[name], b.attrs[name], name)
        return ck

    def check_sweep(self, out):
        path = f"{out}/sweep.h5"
        if os.path.exists(path):
            with h5py.File(path, "r") as f:
                self.assertEqual(f.attrs["format"], "kokkos-lca-sweep")
                n = f.attrs["n_points"]
                keys = list(zip(f["points/nf"][...], f["points/lambda"][...]))
                self.assertEqual(len(keys), n)
                self.assertEqual(len(set(keys)), n)  # each grid point at most once
                for name in ("images/error", "images/active"):
                    self.assertEqual(f[name].shape[0], n)
                    self.assertTrue(np.isfinite(f[name][...]).all())
        for d, _, files in os.walk(f"{out}/points"):
            if "checkpoint.h5" in files:
                check_checkpoint(self, f"{d}/checkpoint.h5", 8)

    def test_scaling(self):
        args = [app("lca-scaling"), "run", "--subset", "64", "--test-subset", "16", "--images", "192",
                "--sizes", "4,8", "--lambdas", "0.1,0.5", "--iterations", "100", "--batch", "8",
                "--checkpoint-every", "1", "--progress", "0"]
        ref = f"{self.tmp}/ref"
        t0 = time.monotonic()
        run([*args, "--out-dir", ref], env=ENV1)
        typical = time.monotonic() - t0
        out = f"{self.tmp}/cut"
        os.makedirs(out)
        killer = Killer(self, random.Random(SEED + 1000), out, typical)
        t0 = time.monotonic()
        cmd = [*args, "--out-dir", out]  # the same command every time
        while True:
            if killer.total() >= KILLS:
                run(cmd, env=ENV1)
                break
            if killer.run_once(cmd):
                break
            self.check_sweep(out)
        self.check_sweep(out)
        self.report("lca-scaling run", killer, time.monotonic() - t0)
        self.assertGreaterEqual(killer.total(), KILLS // 2)
        self.assertGreaterEqual(killer.kills["mid-write"], 1)
        with h5py.File(f"{ref}/sweep.h5") as a, h5py.File(f"{out}/sweep.h5") as b:
            self.assertEqual(b.attrs["n_points"], 4)
            key = lambda f: sorted(zip(f["points/nf"][...], f["points/lambda"][...]))
            self.assertEqual(key(a), key(b))  # each grid point exactly once
            order = lambda f: np.lexsort((f["points/lambda"][...], f["points/nf"][...]))
            for name in ("images/error", "images/active", "points/error_mean", "points/percent_active",
                         "points/energy_mean"):
                np.testing.assert_array_equal(a[name][...][order(a)], b[name][...][order(b)], name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
