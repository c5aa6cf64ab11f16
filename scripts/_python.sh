# Sourced by scripts/demo and scripts/test: the Python 3.10+ that builds the project's venv.
# It is $PYTHON when set, else python3 (stock Debian/Ubuntu have no `python`).

byom_python() {
    local py="${PYTHON:-python3}" major="" minor="" found
    if ! command -v "$py" >/dev/null 2>&1; then
        echo "byom setup: error: '$py' not found; install Python 3.10 or later, or set PYTHON=/path/to/python3.x" >&2
        return 1
    fi
    read -r major minor < <("$py" -c 'import sys; print("%d %d" % sys.version_info[:2])' 2>/dev/null) || true
    if [[ ! "$major" =~ ^[0-9]+$ || ! "$minor" =~ ^[0-9]+$ ]] || ((major < 3 || (major == 3 && minor < 10))); then
        [[ "$major$minor" =~ ^[0-9]+$ ]] && found="Python $major.$minor" || found="not a working Python"
        echo "byom setup: error: byom needs Python 3.10 or later but '$py' is $found; set PYTHON=/path/to/python3.10 (or later)" >&2
        return 1
    fi
    echo "$py"
}
