#!/usr/bin/env bash
# `pip install .` of the repository (setup.py), reusing the test build's folder so that nothing
# is compiled twice, into a private target folder; the installed package is then imported from
# elsewhere and used: a key, a watermarked row, a SentencePiece tokenizer (its module ships in the
# package). Usage: pip_install_test.sh SOURCE_DIR BUILD_DIR PYTHON
set -euo pipefail
src="$1" build="$2" py="$3"
"$py" -m pip --version > /dev/null 2>&1 || { echo "pip is missing (python3-pip)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/setup.py" "$src/python" "$tmp/"  # pip builds in place: keep the checkout clean
cd "$tmp"
TRACEMARK_BUILD_DIR="$build" "$py" -m pip install --no-build-isolation --no-deps --no-index \
  --disable-pip-version-check --root-user-action=ignore -q --target "$tmp/site" . 2>&1 | grep -v "^$" || true
test -f "$tmp/site/tracemark/__init__.py"
ls "$tmp/site/tracemark/"
cd /
PYTHONPATH="$tmp/site" TRACEMARK_SPM_MODULE= "$py" - "$tmp" "$src/data" <<'PY'
import os, sys
import numpy as np
import tracemark
tmp, data = sys.argv[1], sys.argv[2]
assert tracemark.__file__.startswith(os.path.join(tmp, "site")), tracemark.__file__
kid = tracemark.new_key_file(os.path.join(tmp, "k.key"))
wm = tracemark.Watermarker(tracemark.Key.from_file(os.path.join(tmp, "k.key")), vocab_size=100)
row = np.zeros(100, dtype=np.float32)
wm.process_dense(wm.for_account(1), np.arange(wm.context_width, dtype=np.int32), row)
assert row.any(), "nothing watermarked"
tok = tracemark.Tokenizer.load("spm:sotu-bpe8k", data)
assert tok.decode(tok.encode("The state of the union")) == b"The state of the union"
print("installed package works; key", kid)
PY
