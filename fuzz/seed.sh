#!/usr/bin/env bash
# Generates the seed corpus of every fuzz target into fuzz/corpus/<target>/ (not
# committed): the spec vectors' packet bytes, packets encoded by the crate, and inputs
# that build each packet type. Safe to run again: it only adds missing files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example fuzz_seed -- "$PWD/fuzz/corpus"
