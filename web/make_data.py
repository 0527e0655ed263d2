#!/usr/bin/env python3
"""make_data.py - the page's data from the Fashion-MNIST IDX files (`make data`).

    python3 web/make_data.py data/fashion-mnist web/build/data [N_TRAIN] [N_TEST]

Writes two files the page fetches (no header: the page knows the layout):
  train.bin  N_TRAIN images of 28x28 uint8 pixels (row-major), then N_TRAIN uint8 labels
  test.bin   N_TEST test images, then their labels
The first N_TRAIN training images (default 10000, 7.9 MB) and the first N_TEST
test images (default 1000, 0.8 MB); both sets have every class about equally often.
Only the standard library: this runs at build time on any python3."""
import os
import struct
import sys


def read_idx(path, ndim):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if magic != 0x0800 | ndim:
        sys.exit("%s: not an IDX file of %d dimensions (magic %#x)" % (path, ndim, magic))
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def subset(src, prefix, n):
    (count, h, w), pix = read_idx(os.path.join(src, prefix + "-images-idx3-ubyte"), 3)
    (lcount,), lab = read_idx(os.path.join(src, prefix + "-labels-idx1-ubyte"), 1)
    if (h, w) != (28, 28) or lcount != count or n > count:
        sys.exit("%s: expected at least %d 28x28 images with labels, found %d %dx%d" % (src, n, count, h, w))
    return pix[:n * 784] + lab[:n]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n_test = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    os.makedirs(dst, exist_ok=True)
    for name, prefix, n in (("train.bin", "train", n_train), ("test.bin", "t10k", n_test)):
        blob = subset(src, prefix, n)
        tmp = os.path.join(dst, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, os.path.join(dst, name))
        print("make_data: %s/%s (%d images, %d bytes)" % (dst, name, n, len(blob)))


if __name__ == "__main__":
    main()
