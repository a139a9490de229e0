#!/usr/bin/env bash
# warbler's single test command (CI runs `bash scripts/test.sh`).
#
#   1. cargo fmt --check, cargo clippy --all-targets -D warnings, cargo build --all-targets
#   2. a private PostgreSQL server (scripts/pg.sh; installed from apt if missing)
#   3. npm `smpp` in interop/ (for the SMPP interoperability tests) and Debian's chromium +
#      chromium-driver (for the console's browser test, tests/console_browser.rs), then the Rust tests twice:
#      TEST_DATABASE_URL=sqlite::memory: and =the PostgreSQL server (cargo nextest if
#      installed, else cargo test)
#   4. a fuzz smoke (scripts/fuzz-smoke.sh: cargo-fuzz, 10 s each for the SMPP PDU decoder,
#      the parameter parser, the TwiML parser and the numbers inventory CSV importer)
#   5. the official-SDK conformance suites twice, against SQLite and against PostgreSQL:
#      conformance/ (pytest + twilio-python in a cached venv at target/conformance-venv) and
#      conformance-node/ (node --test + npm `twilio`, installed by npm ci into its node_modules)
#   6. a summary; the exit status is non-zero if any step failed
#
# Works on a fresh Debian machine as root (or with sudo); re-runs reuse target/ and the venv.
#
# Options:
#   --only-postgres-smoke  start the private PostgreSQL server, smoke-test it, stop it
#   --skip-lint            no fmt / clippy
#   --skip-rust-tests      no cargo tests
#   --skip-conformance     no SDK conformance suites (Python and Node)
#   --skip-fuzz            no fuzz smoke
#   --sqlite-only          no PostgreSQL at all
#   --fail-fast            stop at the first failing step
#   -h, --help
# Environment: PG_PORT (first port to try, default 55432), PYTHON (default python3),
#   CONFORMANCE_ARGS (extra pytest arguments, e.g. "-k keys -x"),
#   CONFORMANCE_NODE_ARGS (extra `node --test` arguments, e.g. "--test-name-pattern=paging").

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

LINT=1 RUST_TESTS=1 CONFORMANCE=1 POSTGRES=1 FAIL_FAST=0 ONLY_PG_SMOKE=0 FUZZ=1
while [ $# -gt 0 ]; do
    case "$1" in
        --only-postgres-smoke) ONLY_PG_SMOKE=1 ;;
        --skip-lint) LINT=0 ;;
        --skip-rust-tests) RUST_TESTS=0 ;;
        --skip-conformance) CONFORMANCE=0 ;;
        --skip-fuzz) FUZZ=0 ;;
        --sqlite-only) POSTGRES=0 ;;
        --fail-fast) FAIL_FAST=1 ;;
        -h | --help) sed -n '2,/^$/p' "$ROOT/scripts/test.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source-path=SCRIPTDIR source=pg.sh
source "$ROOT/scripts/pg.sh"
export PG_NO_TRAP=1  # our own EXIT trap stops the server

if [ "$ONLY_PG_SMOKE" = 1 ]; then
    trap pg_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    pg_smoke
    exit $?
fi

# Incremental caches are several GB for this crate's many targets and help only repeated
# local builds: a CI run on a fresh clone builds once.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

LOG_DIR="$ROOT/target/test-logs"
VENV="$ROOT/target/conformance-venv"
PYTHON=${PYTHON:-python3}
mkdir -p "$LOG_DIR"

STEP_NAMES=() STEP_RESULTS=() STEP_SECONDS=() STEP_NOTES=()
START_ALL=$SECONDS

summary() {
    local i failed=0
    echo
    echo "==================== warbler test summary ===================="
    for i in "${!STEP_NAMES[@]}"; do
        printf '  %-6s %-25s %5ss  %s\n' "${STEP_RESULTS[$i]}" "${STEP_NAMES[$i]}" "${STEP_SECONDS[$i]}" "${STEP_NOTES[$i]}"
        [ "${STEP_RESULTS[$i]}" = FAIL ] && failed=$((failed + 1))
    done
    echo "  total $((SECONDS - START_ALL))s; logs in ${LOG_DIR#"$ROOT"/}/"
    echo "  disk: target/ $(du -sh "$ROOT/target" 2>/dev/null | cut -f1), $(df -h "$ROOT" 2>/dev/null | awk 'NR == 2 { print $4 }') free"
    if [ "$failed" -gt 0 ]; then
        echo "  RESULT: FAILED ($failed step(s))"
    else
        echo "  RESULT: OK"
    fi
    echo "=============================================================="
    return "$failed"
}

cleanup() {
    local status=$?
    pg_stop
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

record() { # name result seconds [note]
    STEP_NAMES+=("$1") STEP_RESULTS+=("$2") STEP_SECONDS+=("$3") STEP_NOTES+=("${4:-}")
}

# The test runners' own one-line results (pytest, nextest, cargo test), for the summary.
result_note() { # log file
    local line
    line=$(grep -E '^=+ .*[0-9]+ (passed|failed|error)|Summary \[.*tests? run|^fuzz-smoke: .* OK:|^conformance-node: [0-9]+ passed' "$1" 2>/dev/null | tail -n 1 |
        sed -E 's/\x1b\[[0-9;]*m//g; s/^=+ //; s/ =+$//; s/^ *Summary \[ *[0-9.]+s\] *//')
    if [ -z "$line" ] && grep -q '^test result:' "$1" 2>/dev/null; then
        # cargo test prints one line per test binary: add them up.
        line=$(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
                    END { printf "%d passed, %d failed", p, f }' "$1")
    fi
    printf '%s' "$line" | cut -c1-70
}

_wait_briefly() { # pid
    local _
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
}

# run_step NAME COMMAND...: runs it in this shell (so pg_start's exports stay), output shown
# and kept in target/test-logs/NAME.log.
run_step() {
    local name=$1 start=$SECONDS status
    shift
    echo
    echo "==> [$name] $*"
    "$@" > >(tee "$LOG_DIR/$name.log") 2>&1
    status=$?
    _wait_briefly $!  # let tee finish writing (bounded: a stray child could hold its pipe)
    if [ "$status" -eq 0 ]; then
        record "$name" PASS $((SECONDS - start)) "$(result_note "$LOG_DIR/$name.log")"
    else
        record "$name" FAIL $((SECONDS - start)) "$(result_note "$LOG_DIR/$name.log")"
        echo "==> [$name] FAILED (exit $status)"
        if [ "$FAIL_FAST" = 1 ]; then
            summary
            exit 1
        fi
    fi
    return "$status"
}

skip_step() { # name reason
    echo
    echo "==> [$1] skipped: $2"
    record "$1" SKIP 0 "$2"
}

fail_step() { # name reason
    echo
    echo "==> [$1] FAILED: $2"
    record "$1" FAIL 0 "$2"
}

# ---------------------------------------------------------------------------------------------

ensure_rust_components() {
    command -v cargo >/dev/null || { echo "cargo not found" >&2; return 1; }
    local component
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null || { echo "cargo $component missing and no rustup" >&2; return 1; }
            rustup component add "$component" || return 1
        fi
    done
    cargo --version && rustc --version
    echo "disk free for target/: $(df -h "$ROOT" | awk 'NR == 2 { print $4 }')"
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest --version | head -n 1
    else
        echo "cargo-nextest not installed: using cargo test"
    fi
}

rust_tests() { # database-url
    if cargo nextest --version >/dev/null 2>&1; then
        TEST_DATABASE_URL=$1 cargo nextest run --no-fail-fast --no-tests=warn
    else
        TEST_DATABASE_URL=$1 cargo test --no-fail-fast
    fi
}

doc_tests() {
    # nextest does not run doctests; they do not touch a database.
    if cargo nextest --version >/dev/null 2>&1; then
        TEST_DATABASE_URL=sqlite::memory: cargo test --doc
    fi
}

ensure_venv() {
    local req="$ROOT/conformance/requirements.txt" want have=""
    if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
        echo "$PYTHON is missing or older than 3.9" >&2
        return 1
    fi
    want=$( { cat "$req"; "$PYTHON" -c 'import sys; print(sys.version, sys.base_prefix)'; } | sha256sum | cut -c1-64)
    [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
    if [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import twilio, pytest, jsonschema' 2>/dev/null; then
        echo "venv up to date: ${VENV#"$ROOT"/}"
        return 0
    fi
    echo "(re)creating ${VENV#"$ROOT"/}"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 lacks ensurepip until python3-venv is installed.
        rm -rf "$VENV"
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv || return 1
        "$PYTHON" -m venv "$VENV" || return 1
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" || return 1
    "$VENV/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(twilio|pytest|jsonschema)=='
    echo "$want" >"$VENV/.requirements.sha256"
}

# Debian's Chromium and ChromeDriver for the console's browser test (tests/console_browser.rs).
# Without apt (not root, no sudo) the test is skipped, and says so.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        /usr/bin/chromedriver --version
        return 0
    fi
    if ! command -v apt-get >/dev/null || { [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; }; then
        echo "apt-get unavailable: the console browser test will be skipped (WARBLER_SKIP_BROWSER_TESTS=1)"
        export WARBLER_SKIP_BROWSER_TESTS=1
        return 0
    fi
    _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
    _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver || return 1
    /usr/bin/chromedriver --version
}

# npm `smpp` for the SMPP interoperability tests (tests/smpp_interop.rs), in interop/node_modules.
ensure_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
        _pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm || return 1
    fi
    node --version
}

ensure_interop() {
    local lock="$ROOT/interop/package-lock.json" want have=""
    ensure_node || return 1
    want=$(sha256sum "$lock" | cut -c1-64)
    [ -f "$ROOT/interop/node_modules/.lock.sha256" ] && have=$(cat "$ROOT/interop/node_modules/.lock.sha256")
    if [ "$want" = "$have" ] && [ -d "$ROOT/interop/node_modules/smpp" ]; then
        echo "interop/node_modules up to date"
        return 0
    fi
    npm ci --prefix "$ROOT/interop" --no-audit --no-fund || return 1
    echo "$want" >"$ROOT/interop/node_modules/.lock.sha256"
}

# npm `twilio` for the Node conformance suite, in conformance-node/node_modules.
ensure_conformance_node() {
    local lock="$ROOT/conformance-node/package-lock.json" want have=""
    ensure_node || return 1
    want=$(sha256sum "$lock" | cut -c1-64)
    [ -f "$ROOT/conformance-node/node_modules/.lock.sha256" ] && have=$(cat "$ROOT/conformance-node/node_modules/.lock.sha256")
    if [ "$want" = "$have" ] && [ -d "$ROOT/conformance-node/node_modules/twilio" ]; then
        echo "conformance-node/node_modules up to date"
        return 0
    fi
    npm ci --prefix "$ROOT/conformance-node" --no-audit --no-fund || return 1
    echo "$want" >"$ROOT/conformance-node/node_modules/.lock.sha256"
}

conformance_node() { # database (sqlite | postgres server URL)
    local extra=()
    read -r -a extra <<<"${CONFORMANCE_NODE_ARGS:-}"
    (
        cd "$ROOT/conformance-node" &&
            CONFORMANCE_DATABASE=$1 WARBLER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/warbler" node run.mjs "${extra[@]}"
    )
}

conformance() { # database (sqlite | postgres server URL) label
    local extra=()
    read -r -a extra <<<"${CONFORMANCE_ARGS:-}"
    (
        cd "$ROOT/conformance" &&
            PYTHONDONTWRITEBYTECODE=1 CONFORMANCE_DATABASE=$1 WARBLER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/warbler" \
                "$VENV/bin/python" -m pytest --junitxml="$LOG_DIR/conformance-$2.xml" "${extra[@]}"
    )
}

# ---------------------------------------------------------------------------------------------

BUILD_OK=1
run_step toolchain ensure_rust_components || BUILD_OK=0

if [ "$LINT" = 1 ]; then
    run_step fmt cargo fmt --all -- --check
    run_step clippy cargo clippy --all-targets -- -D warnings
else
    skip_step fmt "--skip-lint"
    skip_step clippy "--skip-lint"
fi

if [ "$BUILD_OK" = 1 ]; then
    run_step build cargo build --all-targets || BUILD_OK=0
else
    skip_step build "no Rust toolchain"
fi

PG_OK=0
if [ "$POSTGRES" = 1 ] && [ "$BUILD_OK" = 1 ] && { [ "$RUST_TESTS" = 1 ] || [ "$CONFORMANCE" = 1 ]; }; then
    run_step postgres pg_start && [ -n "${TEST_POSTGRES_URL:-}" ] && PG_OK=1
fi

if [ "$RUST_TESTS" = 0 ]; then
    skip_step rust-tests "--skip-rust-tests"
elif [ "$BUILD_OK" = 0 ]; then
    skip_step rust-tests-sqlite "build failed"
    skip_step rust-tests-postgres "build failed"
else
    run_step interop-npm ensure_interop
    # In this shell, not a subshell: its skip export must reach the test runs.
    run_step chromium ensure_chromium
    run_step rust-tests-sqlite rust_tests "sqlite::memory:"
    run_step doc-tests doc_tests
    if [ "$POSTGRES" = 0 ]; then
        skip_step rust-tests-postgres "--sqlite-only"
    elif [ "$PG_OK" = 1 ]; then
        run_step rust-tests-postgres rust_tests "$TEST_POSTGRES_URL"
    else
        fail_step rust-tests-postgres "PostgreSQL did not start"
    fi
fi

if [ "$FUZZ" = 0 ]; then
    skip_step fuzz-smoke "--skip-fuzz"
elif [ "$BUILD_OK" = 0 ]; then
    skip_step fuzz-smoke "build failed"
else
    run_step fuzz-smoke bash "$ROOT/scripts/fuzz-smoke.sh"
fi

if [ "$CONFORMANCE" = 0 ]; then
    skip_step conformance "--skip-conformance"
elif [ "$BUILD_OK" = 0 ]; then
    skip_step conformance-sqlite "build failed"
    skip_step conformance-postgres "build failed"
else
    if run_step conformance-venv ensure_venv; then
        run_step conformance-sqlite conformance sqlite sqlite
        if [ "$POSTGRES" = 0 ]; then
            skip_step conformance-postgres "--sqlite-only"
        elif [ "$PG_OK" = 1 ]; then
            run_step conformance-postgres conformance "$TEST_POSTGRES_URL" postgres
        else
            fail_step conformance-postgres "PostgreSQL did not start"
        fi
    fi
    if run_step conformance-node-npm ensure_conformance_node; then
        run_step conformance-node-sqlite conformance_node sqlite
        if [ "$POSTGRES" = 0 ]; then
            skip_step conformance-node-postgres "--sqlite-only"
        elif [ "$PG_OK" = 1 ]; then
            run_step conformance-node-postgres conformance_node "$TEST_POSTGRES_URL"
        else
            fail_step conformance-node-postgres "PostgreSQL did not start"
        fi
    fi
fi

summary
