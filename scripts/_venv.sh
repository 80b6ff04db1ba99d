# Shared by serve.sh and test.sh: make ./.venv with Python >= 3.11.
VENV="${TEACHFILE_VENV:-.venv}"

ensure_venv() {
    if [ -x "$VENV/bin/python" ]; then
        return
    fi
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Error: Teachfile needs Python 3.11 or newer as $python." >&2
        exit 1
    fi
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
        # Debian ships venv separately.
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$VENV"
            "$python" -m venv "$VENV"
        else
            echo "Error: cannot create a virtualenv; install python3-venv." >&2
            exit 1
        fi
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
}
