#!/usr/bin/env bash
# A short smoke of every fuzz target (10 s each), for CI: builds the targets with nightly and
# cargo-fuzz when both are there (cargo-fuzz is installed if missing and the install is quick),
# else prints why it skipped. Long runs are done by hand (fuzz/README.md).
set -uo pipefail
cd "$(dirname "$0")"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke skipped: no nightly toolchain"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    if ! timeout 300 cargo install --quiet cargo-fuzz >/dev/null 2>&1; then
        echo "fuzz smoke skipped: cargo-fuzz is not installed and could not be installed quickly"
        exit 0
    fi
fi
set -e
cargo +nightly fuzz build -s none
for t in $(cargo +nightly fuzz list); do
    # A scratch corpus, so the smoke never adds generated inputs to the committed seeds.
    scratch=$(mktemp -d)
    cp -r "corpus/$t/." "$scratch/" 2>/dev/null || true
    echo "fuzz smoke: $t"
    log="$scratch.log"
    status=0
    cargo +nightly fuzz run -s none "$t" "$scratch" -- -max_total_time=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|SUMMARY)|panicked" "$log" || true
    rm -rf "$scratch" "$log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $t failed (see fuzz/artifacts/$t)"
        exit 1
    fi
done
