#!/usr/bin/env bash
# Install what the tests need (Debian packages: dcmtk, dicom3tools, chromium, postgresql,
# tesseract-ocr; Python packages into ./.venv) and run lint, type checks and the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

need_runtime_apt
command -v storescu >/dev/null || need_apt+=(dcmtk)
command -v dciodvfy >/dev/null || need_apt+=(dicom3tools)  # the validator of tests/dicom/test_dciodvfy.py
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
# the OCR tests draw their text in DejaVu Sans (Pillow's own font reads differently)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
install_apt

ensure_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[test]'

echo "== ruff"
"$VENV/bin/ruff" check app tests scripts migrations
echo "== mypy"
"$VENV/bin/mypy"
echo "== pip-audit (fails on a known vulnerability; an unreachable service is reported, not fatal)"
"$VENV/bin/python" scripts/audit_deps.py
echo "== pytest"
exec "$VENV/bin/pytest" "$@"
