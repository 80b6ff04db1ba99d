#!/usr/bin/env bash
# Install Teachfile into ./.venv and serve it on http://127.0.0.1:5000 with the
# demo cases, on SQLite in ./instance (TEACHFILE_DATA_DIR moves it).
# Extra arguments go to `teachfile run` (for example --port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
need_runtime_apt
install_apt || echo "Warning: without tesseract-ocr, ultrasound and screen captures that" \
    "declare no burned-in text cannot be checked and are held for review (the two" \
    "ultrasound sample cases do not load)." >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e .
exec "$VENV/bin/teachfile" run "$@"
