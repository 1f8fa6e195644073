# Shared shell helpers for scripts/test, scripts/demo and .ci/run. Source it; don't run it.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

export UV_PYTHON_DOWNLOADS=never   # use this machine's interpreters; never fetch one
export UV_LINK_MODE=copy

ensure_uv() {
    if ! command -v uv >/dev/null 2>&1; then
        say "installing uv (from PyPI) for this user"
        python3 -m pip install --quiet --user uv || die "could not install uv: run 'python3 -m pip install uv' and retry"
        export PATH="$HOME/.local/bin:$PATH"
    fi
}

# find_python 3.12 -> prints the path of a working python3.12 (PATH first, then pyenv's versions).
find_python() {
    local want=$1 candidate
    if candidate=$(command -v "python$want" 2>/dev/null) && "$candidate" -c '' 2>/dev/null; then
        echo "$candidate"; return 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/"$want".*/bin/python"$want"; do
            [ -x "$candidate" ] && { echo "$candidate"; return 0; }
        done
    fi
    return 1
}

# make_venv <dir> <python version> <Django requirement> [extra uv pip install args...]
make_venv() {
    local dir=$1 py=$2 django=$3; shift 3
    local python
    python=$(find_python "$py") || die "Python $py not found: install it (e.g. 'pyenv install $py') or put python$py on PATH"
    if [ ! -x "$dir/bin/python" ]; then
        say "creating $dir (Python $py)"
        uv venv --quiet --python "$python" "$dir"
    fi
    say "installing django-push and '$django' into $dir"
    uv pip install --quiet --python "$dir/bin/python" -e ".[db,rq,postgres]" "$django" "$@"
}
