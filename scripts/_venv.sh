# Shared by serve.sh and test.sh: make ./.venv with Python >= 3.11, and install Debian packages.
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

# Debian packages are collected in need_apt, then installed by install_apt.
need_apt=()

# What the server itself needs: tesseract reads burned-in text (app/dicom/ocr.py); without
# it an ultrasound that declares none cannot be checked and is held for review.
need_runtime_apt() {
    command -v tesseract >/dev/null || need_apt+=(tesseract-ocr)
    compgen -G "/usr/share/tesseract-ocr/*/tessdata/eng.traineddata" >/dev/null \
        || need_apt+=(tesseract-ocr-eng)
}

# Install need_apt as root; otherwise say what is missing and return 1.
install_apt() {
    [ ${#need_apt[@]} -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Error: need Debian packages ${need_apt[*]}; run as root or install them." >&2
        return 1
    fi
    echo "Installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
}
