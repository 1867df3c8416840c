"""`make bench`: run every benchmark and print ratios (recd relative to the baseline tool).

`--scale 0.1` runs everything at a tenth of the size (quick check); the goals in
docs/benchmarks.md are stated for scale 1.
"""

from __future__ import annotations

import argparse
import json

from bench import overwrite, scan, unlink

GOALS = {
    "scan": ("ratio_first", 0.5),
    "unlink": ("ratio_sweep", 0.5),
    "overwrite_shred": ("ratio_shred", 1.0),
    "overwrite_dd": ("ratio_dd", 0.6),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", choices=["scan", "unlink", "overwrite", "rss"], default=None)
    args = parser.parse_args()
    s = args.scale
    results: dict[str, dict[str, float]] = {}
    if args.only in (None, "scan"):
        results["scan_1m"] = scan.run(int(1_000_000 * s))
    if args.only in (None, "rss", "scan"):
        results["scan_100k"] = scan.run(int(100_000 * s))
    if args.only in (None, "unlink"):
        results["unlink_200k"] = unlink.run(int(200_000 * s))
    if args.only in (None, "overwrite"):
        results["overwrite_1gb"] = overwrite.run(int(1000 * s))
    for name, values in results.items():
        print(f"\n{name}")
        for key, value in values.items():
            print(
                f"  {key:20} {value:12.3f}" if isinstance(value, float) else f"  {key:20} {value}"
            )
    print("\n" + json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
