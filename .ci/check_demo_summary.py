"""Checks the summary `tradestream demo --json` prints as its last line.

Every order must have an outcome, the generated flow has no bad records so there are no dead
letters, trades happened, the store holds every trade of the topic, and both latency readers
(order → outcome, and the floor: order → readable on `orders`) measured every order.
"""

import json
import sys


def main(path: str) -> int:
    lines = [line for line in open(path, encoding="utf-8").read().splitlines() if line.strip()]
    if not lines:
        print("demo summary: the demo printed nothing", file=sys.stderr)
        return 1
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        print(f"demo summary: the last line is not JSON ({e}): {lines[-1]!r}", file=sys.stderr)
        return 1
    problems = []
    if summary["outcomes"] != summary["orders_in"]:
        problems.append(f"{summary['orders_in']} orders in but {summary['outcomes']} outcomes")
    if summary["dead_letters"] != 0:
        problems.append(f"{summary['dead_letters']} dead letters (the demo's flow has none)")
    if summary["trades"] == 0:
        problems.append("no trades")
    for key in ("latency_samples", "input_samples"):
        if summary[key] != summary["orders_in"]:
            problems.append(f"{summary['orders_in']} orders in but {summary[key]} {key}")
    if summary["trades_stored"] != summary["trades"]:
        problems.append(f"{summary['trades']} trades but {summary['trades_stored']} stored")
    if problems:
        print("demo summary: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(
        f"demo summary checked: {summary['orders_in']} orders, each with an outcome; "
        f"{summary['trades']} trades, {summary['trades_stored']} stored; 0 dead letters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
