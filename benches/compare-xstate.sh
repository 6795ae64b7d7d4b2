#!/bin/sh
# The four-step workload (benches/workflows/four_step.yaml) side by side: sopflow's pure step
# (criterion, `cargo bench --bench runtime -- four_step`) and the same machine in XState v5
# (benches/xstate/four_step.mjs, node), in one run, with a summary of nanoseconds per step.
# XState runs before and after sopflow, so that a machine busy with something else shows as
# two XState figures that disagree.
#
#   benches/compare-xstate.sh [criterion options, e.g. --measurement-time 10]
#
# Needs node (20 or later) and npm; installs the pinned XState with `npm ci` on first use.
set -eu
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "compare-xstate: node is not installed" >&2; exit 1; }
if [ ! -d benches/xstate/node_modules/xstate ]; then
  (cd benches/xstate && npm ci --ignore-scripts --no-audit --no-fund)
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

node benches/xstate/four_step.mjs | tee "$out/xstate-1.jsonl"
cargo bench --bench runtime -- four_step "$@"
node benches/xstate/four_step.mjs | tee "$out/xstate-2.jsonl"

target=${CARGO_TARGET_DIR:-target}
node - "$target/criterion/four_step" "$out/xstate-1.jsonl" "$out/xstate-2.jsonl" <<'JS'
const fs = require('fs');
const [dir, ...runs] = process.argv.slice(2);
const sop = (name) => {
  const e = JSON.parse(fs.readFileSync(`${dir}/${name}/new/estimates.json`, 'utf8'));
  // The figure criterion prints: the slope of its linear sampling (the mean otherwise).
  const m = e.slope ?? e.mean;
  return { ns: m.point_estimate, lo: m.confidence_interval.lower_bound, hi: m.confidence_interval.upper_bound };
};
const xs = runs.map((f) => Object.fromEntries(fs.readFileSync(f, 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l)).map((r) => [r.bench, r.median_ns])));
const step = sop('step'), applied = sop('step_apply');
const fmt = (n) => `${(n / 1000).toFixed(2)} µs`;
const send = xs.map((x) => x['xstate/actor_send']), pure = xs.map((x) => x['xstate/transition']);
console.log('\nfour-step workload, 10,000 instances, per step (criterion\'s estimate and 95% interval; XState: median round):');
console.log(`  sopflow machine::step            ${fmt(step.ns)} (${fmt(step.lo)} .. ${fmt(step.hi)})`);
console.log(`  sopflow step + Instance::apply   ${fmt(applied.ns)} (${fmt(applied.lo)} .. ${fmt(applied.hi)})`);
console.log(`  XState actor.send                ${send.map(fmt).join(' / ')} (before / after)`);
console.log(`  XState transition()              ${pure.map(fmt).join(' / ')}`);
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(`  step / actor.send                ${(step.ns / mean(send)).toFixed(2)}x`);
console.log(`  step + apply / actor.send        ${(applied.ns / mean(send)).toFixed(2)}x`);
JS
