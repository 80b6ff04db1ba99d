#!/usr/bin/env bash
# Install what the tests need (Debian packages: dcmtk, dicom3tools, chromium, postgresql;
# Python packages into ./.venv) and run lint, type checks and the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

need_apt=()
command -v storescu >/dev/null || need_apt+=(dcmtk)
command -v dciodvfy >/dev/null || need_apt+=(dicom3tools)  # the validator of tests/dicom/test_dciodvfy.py
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
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
