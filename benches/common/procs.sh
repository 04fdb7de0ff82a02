# Sourced by the bench scripts, from the repository's root: a temporary directory `$tmp`
# and a list `pids` of the processes the script starts. On exit each of them is stopped
# by its PID and the directory is removed.
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
