# Sourced by scripts/test and scripts/demo: puts uv (and, for the tests, redis-server) on PATH.
# Not executable on its own.
export PATH="$HOME/.local/bin:$PATH"
# uv must never download a Python: interpreters come from the machine (pyenv, setup-python, apt).
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"

ensure_uv() {
  command -v uv >/dev/null 2>&1 && return
  echo "uv not found: installing it from PyPI (pip install --user uv)" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv
  hash -r
  command -v uv >/dev/null 2>&1 || { echo "uv could not be installed; see https://docs.astral.sh/uv/" >&2; exit 1; }
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis-server not found: installing it from Debian's packages (the generated real-Redis tests)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is required for the generated projects' real-Redis tests: install it (e.g. sudo apt-get install redis-server)" >&2
    exit 1
  fi
}
