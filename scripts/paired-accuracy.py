#!/usr/bin/env python3
"""Per-configuration accuracy of two reports of the same grid, paired by
problem: each side's maj@W ± s.e. and the difference (second − first)
with a 95% percentile bootstrap CI over problems, as a Markdown table.

    scripts/paired-accuracy.py reports/demo reports/demo-q8act

`hyperscale compare` pairs runs by trial id, which includes the weights'
numerics; this pairs two reports' tables (`tables/problems.csv`,
`tables/points.csv`, as `hyperscale report` writes them) by task, method,
CR, W and L instead, so runs that differ only in `dtype` line up.
Standard library only; the bootstrap is seeded (--seed, --draws).
"""

import argparse
import csv
import random
import sys
from collections import defaultdict
from pathlib import Path


def key(row):
    return (row["task"], row["method"], row["cr_target"], int(row["width"]), int(row["max_tokens"]))


def read(report):
    problems = defaultdict(dict)
    with open(Path(report) / "tables" / "problems.csv", newline="") as f:
        for row in csv.DictReader(f):
            problems[key(row)][row["problem_id"]] = float(row["accuracy"])
    points = {}
    with open(Path(report) / "tables" / "points.csv", newline="") as f:
        for row in csv.DictReader(f):
            points[key(row)] = (float(row["accuracy"]), float(row["accuracy_se"]))
    return problems, points


def bootstrap(diffs, draws, rng, level=0.95):
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws))
    lo = means[int((1 - level) / 2 * draws)]
    hi = means[min(draws - 1, int((1 + level) / 2 * draws))]
    return lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    (pa, sa), (pb, sb) = read(args.first), read(args.second)
    common = sorted(set(pa) & set(pb), key=lambda k: (k[0], k[1], k[2], k[3], k[4]))
    if not common:
        sys.exit("no configuration in common")
    rng = random.Random(args.seed)
    first, second = Path(args.first).name, Path(args.second).name
    print(f"| task | method | CR | W | L | problems | {first} maj@W ± s.e. (%) | "
          f"{second} maj@W ± s.e. (%) | difference (points) | 95% CI | CI holds 0 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    pooled = defaultdict(float)
    inside = 0
    for k in common:
        ids = sorted(set(pa[k]) & set(pb[k]))
        diffs = [pb[k][i] - pa[k][i] for i in ids]
        for i, d in zip(ids, diffs):
            pooled[i] += d / len(common)
        lo, hi = bootstrap(diffs, args.draws, rng)
        mean = sum(diffs) / len(diffs)
        holds = lo <= 0 <= hi
        inside += holds
        (a, ase), (b, bse) = sa[k], sb[k]
        task, method, cr, w, length = k
        print(f"| {task} | {method} | {cr or '–'} | {w} | {length} | {len(ids)} | "
              f"{100 * a:.1f} ± {100 * ase:.1f} | {100 * b:.1f} ± {100 * bse:.1f} | "
              f"{100 * mean:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] | {'yes' if holds else '**no**'} |")
    diffs = list(pooled.values())
    lo, hi = bootstrap(diffs, args.draws, rng)
    print()
    print(f"{inside} of {len(common)} configurations' CIs hold 0; mean over all "
          f"configurations {100 * sum(diffs) / len(diffs):+.1f} points, 95% CI "
          f"[{100 * lo:+.1f}, {100 * hi:+.1f}] ({len(diffs)} problems).")


if __name__ == "__main__":
    main()
