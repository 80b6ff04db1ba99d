#!/usr/bin/env bash
# Install what the tests need (Debian packages: dcmtk, chromium, postgresql, tesseract-ocr;
# Python packages into ./.venv) and run lint, type checks and the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

need_apt=()
command -v storescu >/dev/null || need_apt+=(dcmtk)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
# OCR of burned-in text (app/dicom/ocr.py): the program and its English data
command -v tesseract >/dev/null || need_apt+=(tesseract-ocr)
compgen -G "/usr/share/tesseract-ocr/*/tessdata/eng.traineddata" >/dev/null \
    || need_apt+=(tesseract-ocr-eng)
# the OCR tests draw their text in DejaVu Sans (Pillow's own font reads differently)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Error: need Debian packages ${need_apt[*]}; run as root or install them." >&2
        exit 1
    fi
    echo "Installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        "${need_apt[@]}" >/dev/null
fi

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
