#!/usr/bin/env bash
# Checks the Prometheus example with Prometheus's own tool: the config
# (`promtool check config`, which also reads the rule files it names), the
# rules (`promtool check rules`), and what the rules say on made-up series
# (`promtool test rules rules_test.yml`). Run by ctest (examples_prometheus).
#
# promtool comes with Debian's prometheus package (scripts/install-deps).
# Without it this check FAILS instead of skipping: CI must not pass rules
# nobody checked.
set -euo pipefail
dir="${1:-${0%/*}}"

if ! command -v promtool >/dev/null 2>&1; then
  echo "examples/prometheus: promtool not found; install Debian's prometheus package (scripts/install-deps)" >&2
  exit 1
fi
promtool check config "$dir/prometheus.yml"
promtool check rules "$dir/rules.yml"
promtool test rules "$dir/rules_test.yml"
