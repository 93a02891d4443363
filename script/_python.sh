# Sourced by script/*: finds a Python 3.12 or newer (Django 6 supports nothing older).
# Looks on PATH (python3.13, python3.12, python3), then in pyenv's, uv's and asdf's
# installed versions, newest first. A pyenv shim for a version that is not active
# fails when run, so every candidate is run, not just found.

python_ok() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

python_candidates() {
  local c
  for c in python3.14 python3.13 python3.12 python3; do
    command -v "$c" 2>/dev/null
  done
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3 \
           "${UV_PYTHON_INSTALL_DIR:-$HOME/.local/share/uv/python}"/cpython-3.*/bin/python3 \
           "${ASDF_DATA_DIR:-$HOME/.asdf}"/installs/python/3.*/bin/python3; do
    [ -x "$c" ] && printf '%s\n' "$c"
  done | sort -t/ -V -r
  if command -v uv >/dev/null 2>&1; then
    uv python find '>=3.12' 2>/dev/null || true
  fi
}

find_python() {
  local c
  while IFS= read -r c; do
    [ -n "$c" ] && python_ok "$c" && { printf '%s\n' "$c"; return 0; }
  done < <(python_candidates)
  return 1
}
