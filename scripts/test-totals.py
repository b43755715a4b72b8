#!/usr/bin/env python3
"""Sum meson test logs (testlog.json) into "N passed, N failed".

Counts test cases where the output says how many ran (Check's
"Checks: N, Failures: F, Errors: E", unittest's "Ran N tests"); a test
program without such a line counts as one case. With CI=true, skipped
tests and cases count as failed. Exit status 1 when anything failed.
"""
import json
import os
import re
import sys

CHECK = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.M)
UNITTEST_SKIPPED = re.compile(r"skipped=(\d+)")


def count(entry):
    """(passed, failed, skipped) for one meson test."""
    out = (entry.get("stdout") or "") + (entry.get("stderr") or "")
    result = entry["result"]
    ok = result in ("OK", "EXPECTEDFAIL")
    if result == "SKIP":
        return 0, 0, 1
    m = CHECK.search(out)
    if m:
        total, failures, errors = map(int, m.groups())
        failed = failures + errors
        if not ok and failed == 0:
            failed = 1  # crashed after its summary
        return total - failed if ok else max(total - failed, 0), failed, 0
    m = UNITTEST_RAN.search(out)
    if m:
        total = int(m.group(1))
        skipped = sum(int(s) for s in UNITTEST_SKIPPED.findall(out[m.end():]))
        fails = re.search(r"FAILED \(([^)]*)\)", out[m.end():])
        failed = 0
        if fails:
            failed = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", fails.group(1)))
        if not ok and failed == 0:
            failed = 1
        return total - failed - skipped, failed, skipped
    return (1, 0, 0) if ok else (0, 1, 0)


def main(paths):
    strict = os.environ.get("CI") == "true"
    passed = skipped = 0
    # Steps that failed before their tests could run (a build, say).
    failed = int(os.environ.get("WHR_TEST_BROKEN_STEPS", "0"))
    for path in paths:
        run = [0, 0, 0]
        try:
            with open(path) as f:
                entries = [json.loads(line) for line in f if line.strip()]
        except OSError:
            print(f"{path}: missing test log", file=sys.stderr)
            failed += 1
            continue
        if not entries:
            print(f"{path}: no tests ran", file=sys.stderr)
            failed += 1
        for entry in entries:
            p, fl, s = count(entry)
            run[0] += p
            run[1] += fl
            run[2] += s
            if fl or (s and strict):
                print(f"  {os.path.basename(path)}: {entry['name']}: {entry['result']}"
                      f" ({fl} failed, {s} skipped)", file=sys.stderr)
        name = os.path.basename(path).removesuffix(".json")
        print(f"{name}: {run[0]} passed, {run[1]} failed, {run[2]} skipped")
        passed += run[0]
        failed += run[1]
        skipped += run[2]
    if strict:
        failed += skipped
    elif skipped:
        print(f"({skipped} skipped)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
