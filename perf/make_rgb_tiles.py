#!/usr/bin/python3
"""Cut seeded 32x32 RGB tiles from the sample photographs of Debian's python3-skimage into PNG
files and two png-list files (train / test), for the time-to-gap benchmark on the W128 shape
(3x32x32). Train and test come from different photographs, so no test tile shares a photo
with a training tile.

    /usr/bin/python3 perf/make_rgb_tiles.py OUT_DIR [--size 32] [--per-photo 400] [--seed 1]
"""
import argparse
import glob
import os
import struct
import zlib

import numpy as np
import skimage.io

DATA = "/usr/lib/python3/dist-packages/skimage/data"
TRAIN = ["astronaut", "coffee", "motorcycle_left", "rocket"]
TEST = ["chelsea"]


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--per-photo", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    for split, names in (("train", TRAIN), ("test", TEST)):
        paths = []
        for name in names:
            photo = skimage.io.imread(glob.glob(f"{DATA}/{name}.*")[0])[:, :, :3]
            h, w, _ = photo.shape
            for i in range(a.per_photo):
                y, x = rng.integers(0, h - a.size + 1), rng.integers(0, w - a.size + 1)
                path = os.path.abspath(f"{a.out}/{name}_{i:04d}.png")
                write_png(path, np.ascontiguousarray(photo[y:y + a.size, x:x + a.size]))
                paths.append(path)
        with open(f"{a.out}/{split}.txt", "w") as f:
            f.write("\n".join(paths) + "\n")
        print(f"{split}: {len(paths)} tiles of {a.size}x{a.size} from {', '.join(names)}")


if __name__ == "__main__":
    main()
