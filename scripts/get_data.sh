#!/usr/bin/env bash
# Put the gunzipped Fashion-MNIST IDX files under data/fashion-mnist/ (or $1).
# Source: Debian's package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz).
# Idempotent: files already present and non-empty are left alone.
set -euo pipefail

DEST=${1:-}
if [ -n "$DEST" ]; then
    mkdir -p "$DEST" && DEST=$(cd "$DEST" && pwd)   # relative to the caller's directory
fi
cd "$(dirname "$0")/.."
DEST=${DEST:-data/fashion-mnist}
SRC=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
PKG=dataset-fashion-mnist
FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

have_all() {
    local f
    for f in $FILES; do [ -s "$DEST/$f" ] || return 1; done
}
have_gz() {
    local f
    for f in $FILES; do [ -s "$SRC/$f.gz" ] || return 1; done
}

if have_all; then
    echo "get_data: $DEST already has the four Fashion-MNIST files"
    exit 0
fi

if ! have_gz; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "get_data: installing $PKG with apt-get" >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$PKG"; then
            DEBIAN_FRONTEND=noninteractive apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y "$PKG"
        fi
    fi
    if ! have_gz; then
        cat >&2 <<MSG
get_data: Fashion-MNIST not found in $SRC.
  Install Debian's package '$PKG' (as root: apt-get install $PKG),
  or put the four gunzipped IDX files
    $FILES
  in $DEST/ yourself.
MSG
        exit 1
    fi
fi

mkdir -p "$DEST"
for f in $FILES; do
    if [ ! -s "$DEST/$f" ]; then
        gzip -dc "$SRC/$f.gz" > "$DEST/$f.tmp"
        mv "$DEST/$f.tmp" "$DEST/$f"
    fi
done
echo "get_data: wrote $DEST ($FILES)"
