#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets in fuzz/fuzz_targets/ and runs each for a
# bounded time. Exits non-zero if the build fails or the fuzzer finds a crash in any target
# (the input is printed in hex and kept under target/fuzz/artifacts/).
#
#   bash scripts/fuzz-smoke.sh                     # every target, 10 s each (the test command's)
#   FUZZ_SECONDS=600 bash scripts/fuzz-smoke.sh    # longer, on demand: 10 minutes each
#   bash scripts/fuzz-smoke.sh twiml inventory_csv # only these targets
#
# Targets: smpp_pdu (SMPP PDU decoder), form_params (request parameter parser), twiml (the
# messaging TwiML parser), inventory_csv (the numbers inventory CSV importer).
#
# Environment:
#   FUZZ_SECONDS    run time of each target in seconds (default 10)
#   FUZZ_TARGET     one target to run (as if named on the command line; kept for old callers)
#   FUZZ_TOOLCHAIN  rustup toolchain to build with (default: the default one, stable: with no
#                   sanitizer cargo-fuzz needs no unstable flag)
#   FUZZ_SANITIZER  none (default: warbler and rusmpp have no unsafe code, so ASan would only
#                   slow the fuzzer down) or address, memory, thread, leak (these need nightly,
#                   which is then used unless FUZZ_TOOLCHAIN says otherwise)
#   FUZZ_CODEGEN_UNITS  codegen units per crate (default 16; cargo-fuzz's own default, 1,
#                   makes the first build about three times longer)
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-only_ascii=1"
#   CARGO_TARGET_DIR  builds, corpora and logs go to its fuzz/ folder (default target/fuzz/)
#
# Installs cargo-fuzz (into ~/.cargo/bin) if missing. Builds into target/fuzz/ (not the main
# build's target/debug), and keeps each target's corpus there too: target/fuzz/corpus/TARGET,
# seeded from the committed fuzz/seeds/TARGET. To replay a crash:
#   target/fuzz/x86_64-unknown-linux-gnu/release/TARGET target/fuzz/artifacts/TARGET/crash-...

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

FUZZ_SECONDS=${FUZZ_SECONDS:-10}
ALL_TARGETS=(smpp_pdu form_params twiml inventory_csv)
if [ $# -gt 0 ]; then
    TARGETS=("$@")
elif [ -n "${FUZZ_TARGET:-}" ]; then
    TARGETS=("$FUZZ_TARGET")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
FUZZ_CODEGEN_UNITS=${FUZZ_CODEGEN_UNITS:-16}
CARGO_FUZZ_VERSION=0.13.2

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"

say() { echo "fuzz-smoke: $*"; }
die() {
    echo "fuzz-smoke: ERROR: $*" >&2
    exit 1
}

case "$FUZZ_SECONDS" in
    '' | *[!0-9]* | 0) die "FUZZ_SECONDS must be a positive whole number of seconds, not '$FUZZ_SECONDS'" ;;
esac
for target in "${TARGETS[@]}"; do
    [ -f "$ROOT/fuzz/fuzz_targets/$target.rs" ] || die "no fuzz target fuzz/fuzz_targets/$target.rs"
done
command -v cargo >/dev/null || die "cargo not found"

# --- cargo-fuzz -------------------------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (once; into ~/.cargo/bin)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked ||
        die "could not install cargo-fuzz"
fi
say "$(cargo fuzz --version)"

# --- toolchain ----------------------------------------------------------------------------------
# With -s none every flag cargo-fuzz passes (sancov passes, --cfg fuzzing) is a stable one, so
# the default toolchain, the one the main build uses, does. A sanitizer needs nightly's -Z.
TOOLCHAIN=${FUZZ_TOOLCHAIN:-}
if [ -z "$TOOLCHAIN" ] && [ "$FUZZ_SANITIZER" != none ]; then
    TOOLCHAIN=nightly
fi
TOOLCHAIN_ARG=()
if [ -n "$TOOLCHAIN" ]; then
    command -v rustup >/dev/null || die "toolchain '$TOOLCHAIN' asked for, but no rustup"
    rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1 ||
        die "toolchain '$TOOLCHAIN' is not installed (FUZZ_SANITIZER=$FUZZ_SANITIZER needs nightly; the default, none, does not)"
    TOOLCHAIN_ARG=("+$TOOLCHAIN")
fi
RUSTC_VERSION=$(rustc "${TOOLCHAIN_ARG[@]}" --version) || die "rustc ${TOOLCHAIN_ARG[*]} does not run"
say "toolchain: $RUSTC_VERSION, sanitizer: $FUZZ_SANITIZER"

# --- build --------------------------------------------------------------------------------------
HOST=$(rustc "${TOOLCHAIN_ARG[@]}" -vV | sed -n 's/^host: //p')
[ -n "$HOST" ] || die "could not tell the host triple from rustc -vV"
BUILD_START=$SECONDS
# One build for all targets: they share every dependency, each adds a link.
BUILD_WHICH=()
[ "${#TARGETS[@]}" -eq 1 ] && BUILD_WHICH=("${TARGETS[0]}")
say "building ${TARGETS[*]} (into ${TARGET_DIR#"$ROOT"/}/)"
cargo "${TOOLCHAIN_ARG[@]}" fuzz build "${BUILD_WHICH[@]}" --release --debug-assertions \
    --sanitizer "$FUZZ_SANITIZER" --codegen-units "$FUZZ_CODEGEN_UNITS" \
    --target "$HOST" --target-dir "$TARGET_DIR" ||
    die "build of the fuzz targets failed"
BUILD_SECONDS=$((SECONDS - BUILD_START))
say "built in ${BUILD_SECONDS}s"

# --- run ----------------------------------------------------------------------------------------
extra=()
read -r -a extra <<<"${FUZZ_ARGS:-}"

run_target() { # target
    local FUZZ_TARGET=$1
    local BINARY="$TARGET_DIR/$HOST/release/$FUZZ_TARGET"
    local SEEDS="$ROOT/fuzz/seeds/$FUZZ_TARGET"
    local CORPUS="$TARGET_DIR/corpus/$FUZZ_TARGET"
    local ARTIFACTS="$TARGET_DIR/artifacts/$FUZZ_TARGET"
    local LOG="$TARGET_DIR/logs/$FUZZ_TARGET.log"
    [ -x "$BINARY" ] || die "built, but no binary at $BINARY"
    mkdir -p "$CORPUS" "$ARTIFACTS" "$(dirname "$LOG")"
    if [ -d "$SEEDS" ]; then
        cp -p "$SEEDS"/* "$CORPUS"/ 2>/dev/null || true
    fi
    CORPUS_BEFORE=$(find "$CORPUS" -type f | wc -l)
    MARKER="$TARGET_DIR/logs/.$FUZZ_TARGET.started"
    touch "$MARKER"

    say "running $FUZZ_TARGET for ${FUZZ_SECONDS}s on ${CORPUS_BEFORE} corpus files (log: ${LOG#"$ROOT"/})"
    status=0
    "$BINARY" "$CORPUS" \
        -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len=4096 \
        "${extra[@]}" >"$LOG" 2>&1 || status=$?

    EXECS=$(stat number_of_executed_units)
    EXEC_PER_SEC=$(stat average_exec_per_sec)
    NEW_UNITS=$(stat new_units_added)
    PEAK_RSS=$(stat peak_rss_mb)
    DONE_LINE=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$LOG" | tail -n 1 || true)
    RUN_SECONDS=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' <<<"$DONE_LINE")
    COVERAGE=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$LOG" | tail -n 1 || true)
    CORPUS_AFTER=$(find "$CORPUS" -type f | wc -l)

    if [ "$status" -ne 0 ]; then
        echo "----- last lines of the fuzzer's log (${LOG#"$ROOT"/}) -----" >&2
        tail -n 60 "$LOG" >&2
        echo "-----" >&2
        if grep -q "panicked at" "$LOG"; then
            echo "fuzz-smoke: panic: $(grep -m1 -A8 'panicked at' "$LOG" | sed -E '/^(stack backtrace:|note: )/,$d')" >&2
        fi
        found=0
        while IFS= read -r artifact; do
            found=1
            size=$(wc -c <"$artifact")
            echo "fuzz-smoke: failing input: ${artifact#"$ROOT"/} ($size bytes)" >&2
            if [ "$size" -eq 0 ]; then
                echo "fuzz-smoke: hex: (empty input)" >&2
            else
                echo "fuzz-smoke: hex: $(head -c 4096 "$artifact" | od -An -tx1 -v | tr -d ' \n')$([ "$size" -gt 4096 ] && echo ...)" >&2
            fi
            echo "fuzz-smoke: replay: ${BINARY#"$ROOT"/} ${artifact#"$ROOT"/}" >&2
        done < <(find "$ARTIFACTS" -type f -newer "$MARKER" \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | sort)
        [ "$found" = 1 ] || echo "fuzz-smoke: (the fuzzer wrote no artifact)" >&2
        echo "fuzz-smoke: ERROR: $FUZZ_TARGET FAILED (fuzzer exit $status) after ${EXECS:-?} executions" >&2
        return 1
    fi
    [ -n "$EXECS" ] || die "the fuzzer exited 0 but printed no final stats (see ${LOG#"$ROOT"/})"

    say "$FUZZ_TARGET OK: ${EXECS} executions in ${RUN_SECONDS:-$FUZZ_SECONDS}s (${EXEC_PER_SEC} exec/s), ${COVERAGE:-cov: ?}, corpus ${CORPUS_BEFORE} -> ${CORPUS_AFTER} files (+${NEW_UNITS:-0} new units), peak RSS ${PEAK_RSS:-?} MB"
}

stat() { sed -n "s/^stat::$1: *//p" "$LOG" | tail -n 1; }

RUN_START=$SECONDS
FAILED=()
for target in "${TARGETS[@]}"; do
    run_target "$target" || FAILED+=("$target")
done
[ "${#FAILED[@]}" -eq 0 ] || die "${#FAILED[@]} of ${#TARGETS[@]} target(s) FAILED: ${FAILED[*]}"
say "all ${#TARGETS[@]} target(s) OK: ${TARGETS[*]}, ${FUZZ_SECONDS}s each; build ${BUILD_SECONDS}s, runs $((SECONDS - RUN_START))s"
