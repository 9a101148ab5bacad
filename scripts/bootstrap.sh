# Sourced by scripts/test and scripts/demo: puts uv (and, for the tests, redis-server) on PATH.
export PATH="$HOME/.local/bin:$PATH"
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"

ensure_uv() {
  command -v uv >/dev/null 2>&1 && return
  echo "installing uv from PyPI" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  hash -r
  command -v uv >/dev/null 2>&1 || { echo "uv could not be installed; see https://docs.astral.sh/uv/" >&2; exit 1; }
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is required for the rate-limit tests: install it (e.g. apt-get install redis-server)" >&2
    exit 1
  fi
}
