#!/usr/bin/env bash
# The validity study (docs/validity.md) in one command: builds the clean corpus from Debian
# packages, scores every document under keys that never touched it, prints the tables and draws
# the QQ plot. Takes about 10 minutes on 2 cores. Output: out/validity/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian's Python draws the plot (its python3-matplotlib package).
/usr/bin/python3 -c "import matplotlib" 2>/dev/null || {
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends python3-matplotlib
}
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACEMARK_BUILD_TESTS=OFF >/dev/null
cmake --build build-rel --target validity_study
mkdir -p out/validity
python3 scripts/validity_corpus.py --out out/validity/corpus
build-rel/studies/validity_study --corpus out/validity/corpus --out out/validity/pvalues.json \
  | tee out/validity/tables.md
/usr/bin/python3 scripts/validity_plot.py out/validity/pvalues.json out/validity/validity-qq.png
