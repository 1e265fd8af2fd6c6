"""Runs one case of tests/bad-inputs/cases.tsv: the app must exit with the expected code and
one line on stderr containing the expected fragment, leaving existing files untouched."""
import hashlib
import os
import shlex
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "apps"))
from common import app, run, tmpdir, write_idx, write_png  # noqa: E402


def fixtures(tmp):
    """The bad (and the few good) files the cases refer to."""
    write_idx(f"{tmp}/truncated-images-idx3-ubyte", np.zeros((10, 8, 8)))
    with open(f"{tmp}/truncated-images-idx3-ubyte", "r+b") as f:
        f.truncate(16 + 5 * 64 + 3)
    with open(f"{tmp}/badmagic-images-idx3-ubyte", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + bytes(12 + 64))
    with open(f"{tmp}/huge-images-idx3-ubyte", "wb") as f:  # claims 4e9 images of 28x28
        f.write(bytes.fromhex("00000803ffffffff0000001c0000001c") + bytes(100))
    os.makedirs(f"{tmp}/cifar")
    with open(f"{tmp}/cifar/data_batch_1.bin", "wb") as f:
        f.write(bytes(3073 * 2 + 100))
    with open(f"{tmp}/cifar/good.bin", "wb") as f:
        f.write(bytes(3073 * 4))
    os.makedirs(f"{tmp}/png")
    write_png(f"{tmp}/png/a.png", np.zeros((8, 8)))
    write_png(f"{tmp}/png/b.png", np.zeros((8, 9)))
    with open(f"{tmp}/png/wrong-size.txt", "w") as f:
        f.write("a.png\nb.png\n")
    with open(f"{tmp}/png/missing.txt", "w") as f:
        f.write("a.png\nnothere.png\n")
    # png-tiles photographs (32x32 tiles by default): two that hold one tile each, too small,
    # gray, and lists naming one photograph or one twice.
    os.makedirs(f"{tmp}/tiles/empty")
    for name, w, h, rgb in (("a", 40, 40, True), ("b", 40, 40, True), ("tiny1", 40, 20, True),
                            ("tiny2", 20, 40, True), ("gray1", 40, 40, False), ("gray2", 40, 40, False)):
        write_png(f"{tmp}/tiles/{name}.png", np.zeros((h, w, 3) if rgb else (h, w)))
    for name, photos in (("ok", "a b"), ("small", "tiny1 tiny2"), ("gray", "gray1 gray2"),
                         ("one", "a"), ("twice", "a b a")):
        with open(f"{tmp}/tiles/{name}.txt", "w") as f:
            f.write("".join(f"{p}.png\n" for p in photos.split()))
    with open(f"{tmp}/afile", "w") as f:
        f.write("a file, not a directory\n")
    with open(f"{tmp}/empty-array.toml", "w") as f:  # a fuzz finding (tests/fuzz/README.md)
        f.write("nf = 8\nashift = []\n")
    with open(f"{tmp}/open-array.toml", "w") as f:
        f.write("lambda = [0.5\n")
    with open(f"{tmp}/binary.toml", "wb") as f:  # e.g. a checkpoint passed as --config
        f.write(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    with open(f"{tmp}/negative-progress.toml", "w") as f:
        f.write("subset = 16\nprogress = -1\n")
    with open(f"{tmp}/text.h5", "w") as f:
        f.write("not HDF5\n")
    # Inputs that an output must never overwrite (lca-denoise -c ck.h5 -o ck.h5 once did).
    images = np.random.default_rng(0).integers(0, 256, size=(32, 28, 28))
    write_idx(f"{tmp}/good-images-idx3-ubyte", images)
    with open(f"{tmp}/good-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x00000801, 32) + bytes(range(32)))
    os.symlink(f"{tmp}/good-images-idx3-ubyte", f"{tmp}/link.h5")
    write_png(f"{tmp}/png/x_features.png", np.zeros((8, 8)))
    with open(f"{tmp}/png/features.txt", "w") as f:
        f.write("a.png\nx_features.png\n")
    with open(f"{tmp}/cfg.toml", "w") as f:
        f.write("subset = 16\n")
    for d in ("sw3", "sw4/points/nf4_lambda0.5"):
        os.makedirs(f"{tmp}/{d}")
    write_idx(f"{tmp}/sw3/sweep.h5", images)
    write_idx(f"{tmp}/sw4/points/nf4_lambda0.5/checkpoint.h5", images)
    ck = f"{tmp}/ck.h5"
    run([app("lca-train"), "--subset", "32", "--nf", "4", "--iterations", "5", "--images", "32",
         "--progress", "0", "-o", ck])
    run([app("lca-denoise"), "-c", ck, "--subset", "4", "--iterations", "2", "--progress", "0",
         "-o", f"{tmp}/results.h5"])
    os.link(ck, f"{tmp}/hardlink.h5")
    os.makedirs(f"{tmp}/an")
    shutil.copy(f"{tmp}/results.h5", f"{tmp}/an/results.csv")
    return ck


def digest(tmp):
    """Hashes of every file that existed before the case ran."""
    out = {}
    for root, _, files in os.walk(tmp):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def main(name):
    here = os.path.dirname(os.path.abspath(__file__))
    cases = {}
    with open(os.path.join(here, "cases.tsv")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                n, cmd, code, fragment = line.rstrip("\n").split("\t")
                cases[n] = (cmd, int(code), fragment)
    cmd, code, fragment = cases[name]
    tmp = tmpdir()
    ck = fixtures(tmp)
    before = digest(tmp)
    args = [a.format(train=app("lca-train"), denoise=app("lca-denoise"), scaling=app("lca-scaling"),
                     tmp=tmp, ck=ck) for a in shlex.split(cmd)]
    rc, out, err = run(args, timeout=120, check=False)
    lines = [line for line in err.splitlines() if line.strip()]
    ok = True
    if rc != code:
        print(f"FAIL exit code {rc}, expected {code}")
        ok = False
    if len(lines) != 1 or fragment not in lines[0]:
        print(f"FAIL expected one stderr line containing {fragment!r}")
        ok = False
    changed = [p for p, h in before.items() if digest(tmp).get(p) != h]
    if changed:
        print(f"FAIL files changed or removed: {changed}")
        ok = False
    print(f"case {name}: {' '.join(args)}\n  exit {rc}\n  stderr: {err.strip()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
