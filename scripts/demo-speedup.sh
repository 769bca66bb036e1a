#!/usr/bin/env bash
# The demo's speed-up from continuous batching: runs `hyperscale sweep` on a
# config twice — with the engine's default (or --max-sequences N) and with
# `--max-sequences 1` — into two fresh run directories, times each, checks
# that the records are identical field for field except timings and
# occupancy, and prints both wall times, generated tokens/s and the ratio
# (docs/batching.md, "Sweep throughput").
#
#   scripts/demo-speedup.sh                       # configs/demo.toml: about 14 + 40 minutes on 2 cores
#   scripts/demo-speedup.sh --config /tmp/slice.toml --out /tmp/speedup
#
# Options (all optional):
#   --config FILE       the sweep config (default configs/demo.toml)
#   --out DIR           parent of the two runs, must not exist
#                       (default results/demo-speedup-<UTC time>); the runs
#                       go to DIR/batched/<run> and DIR/serial/<run>, never
#                       to the config's own results directory
#   --max-sequences N   the batched run's --max-sequences (default: none
#                       given, so the config's [engine] or the built-in default)
#   --serial-first      run the --max-sequences 1 side first (default: batched
#                       first)
#
# Environment: HYPERSCALE (default target/release/hyperscale; build it with
# `cargo build --release --features wgpu`). Exit status 1 when the records
# differ. Writes DIR/summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

config=configs/demo.toml
out="results/demo-speedup-$(date -u +%Y%m%dT%H%M%SZ)"
max_sequences=()
serial_first=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --max-sequences) max_sequences=(--max-sequences "$2"); shift 2 ;;
    --serial-first) serial_first=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "demo-speedup.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done
hyperscale="${HYPERSCALE:-target/release/hyperscale}"
[[ -x "$hyperscale" ]] || { echo "demo-speedup.sh: $hyperscale: not built (cargo build --release --features wgpu, or set HYPERSCALE)" >&2; exit 2; }
[[ -f "$config" ]] || { echo "demo-speedup.sh: --config $config: no such file" >&2; exit 2; }
# A run directory that already holds records would resume, not rerun.
[[ ! -e "$out" ]] || { echo "demo-speedup.sh: --out $out: exists; give a new directory" >&2; exit 2; }
mkdir -p "$out"

# run SIDE ARGS...: one sweep into $out/SIDE, its wall seconds into $out/SIDE.seconds.
run() {
  local side="$1"; shift
  echo "== $side: $hyperscale sweep $config --results $out/$side $*" >&2
  local start end
  start=$(date +%s.%N)
  "$hyperscale" sweep "$config" --results "$out/$side" --progress log "$@" > "$out/$side.log" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')" > "$out/$side.seconds"
  echo "   $(cat "$out/$side.seconds") s" >&2
}
if [[ $serial_first == 1 ]]; then
  run serial --max-sequences 1
  run batched "${max_sequences[@]}"
else
  run batched "${max_sequences[@]}"
  run serial --max-sequences 1
fi

python3 - "$out" "$config" "${max_sequences[1]:-default}" <<'EOF'
import glob, json, sys

out, config, max_sequences = sys.argv[1:4]
# Fields that may differ between the two runs: timings and batch occupancy.
VOLATILE = {"wall_seconds", "prefill_seconds", "decode_tokens_per_second",
            "grade_seconds", "occupancy"}

def records(side):
    paths = glob.glob(f"{out}/{side}/*/samples.jsonl")
    if len(paths) != 1:
        sys.exit(f"demo-speedup.sh: expected one run under {out}/{side}, found {paths}")
    with open(paths[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r["sample_id"]: r for r in rows}

batched, serial = records("batched"), records("serial")
problems = []
if batched.keys() != serial.keys():
    problems.append(f"sample ids differ: {len(batched.keys() - serial.keys())} only batched, "
                    f"{len(serial.keys() - batched.keys())} only serial")
for sid in sorted(batched.keys() & serial.keys()):
    a, b = batched[sid], serial[sid]
    for field in sorted((a.keys() | b.keys()) - VOLATILE):
        if a.get(field) != b.get(field):
            problems.append(f"{sid}: {field}: batched {a.get(field)!r} != serial {b.get(field)!r}")
seconds = {s: float(open(f"{out}/{s}.seconds").read()) for s in ("batched", "serial")}
# Nested widths reuse samples: W = 2 holds W = 1's sample and more. Count
# each decoded sample once.
decoded = {(r["group"], r["problem_id"], r["repeat"], r["seed"], r["sample"]): r["generated_tokens"]
           for r in batched.values()}
tokens = sum(decoded.values())
summary = {
    "config": config,
    "max_sequences": max_sequences,
    "records": len(batched),
    "samples_decoded": len(decoded),
    "generated_tokens": tokens,
    "batched_seconds": seconds["batched"],
    "serial_seconds": seconds["serial"],
    "batched_tokens_per_s": tokens / seconds["batched"],
    "serial_tokens_per_s": tokens / seconds["serial"],
    "speedup": seconds["serial"] / seconds["batched"],
    "records_identical": not problems,
    "differences": problems[:20],
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
for p in problems[:20]:
    print("DIFF", p)
print(f"{config}: {len(batched)} records, {len(decoded)} samples decoded, {tokens} generated tokens")
print(f"batched (--max-sequences {max_sequences}): {seconds['batched']:.1f} s, "
      f"{summary['batched_tokens_per_s']:.1f} tok/s")
print(f"serial  (--max-sequences 1): {seconds['serial']:.1f} s, "
      f"{summary['serial_tokens_per_s']:.1f} tok/s")
print(f"speed-up (serial ÷ batched wall time): {summary['speedup']:.2f}×")
print("records identical except timings and occupancy" if not problems
      else f"RECORDS DIFFER in {len(problems)} fields")
sys.exit(1 if problems else 0)
EOF
