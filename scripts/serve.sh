#!/usr/bin/env bash
# Install Teachfile into ./.venv and serve it on http://127.0.0.1:5000 with the
# demo cases, on SQLite in ./instance (TEACHFILE_DATA_DIR moves it).
# Extra arguments go to `teachfile run` (for example --port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e .
exec "$VENV/bin/teachfile" run "$@"
