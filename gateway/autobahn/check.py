#!/usr/bin/env python3
"""Checks a kosoku report (index.json) against expected.txt; prints counts per category and
every unexpected outcome; exits 1 if there is one.

Usage: check.py INDEX_JSON EXPECTED_TXT [--partial]
(--partial: a selection of cases ran; skip the whole-suite checks.)"""

import collections
import fnmatch
import json
import sys
from pathlib import Path

PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASS_CLOSE = {"OK", "INFORMATIONAL"}


def load_rules(path):
    rules, total = [], None
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        glob, rule, *_ = line.split(None, 2)
        if glob == "total":
            total = int(rule)
        else:
            rules.append([glob, rule, 0])
    return rules, total


def case_key(case_id):
    return [int(p) for p in case_id.split(".")]


def main():
    report, expected = sys.argv[1], sys.argv[2]
    partial = "--partial" in sys.argv[3:]
    rules, total = load_rules(expected)
    index = json.loads(Path(report).read_text())
    results = {}
    for per_agent in index.values():
        results.update(per_agent)
    counts = collections.Counter()
    unexpected = []
    for case_id in sorted(results, key=case_key):
        r = results[case_id]
        behavior, close, code = r["behavior"], r["behaviorClose"], r["remoteCloseCode"]
        category = case_id.split(".")[0]
        rule = next((x for x in rules if fnmatch.fnmatchcase(case_id, x[0])), None)
        if rule is None:
            ok = behavior in PASS and close in PASS_CLOSE
            outcome = "pass" if ok else f"FAIL {behavior}/{close}/{code}"
        else:
            rule[2] += 1
            if rule[1] == "unimplemented":
                ok = behavior == "UNIMPLEMENTED" and close in PASS_CLOSE
            else:
                ok = rule[1] == f"close={code}"
            outcome = f"{rule[1]} (by design)" if ok else f"FAIL {behavior}/{close}/{code}, expected {rule[1]}"
        counts[(category, outcome if ok else "unexpected")] += 1
        if not ok:
            unexpected.append(f"  {case_id}: {outcome}")
    print("Autobahn results per category (case group: outcome = count):")
    for category in sorted({c for c, _ in counts}, key=int):
        parts = [f"{o} = {n}" for (c, o), n in sorted(counts.items()) if c == category]
        print(f"  {category}: " + ", ".join(parts))
    problems = list(unexpected)
    for glob, rule, used in rules:
        if not used and not partial:
            problems.append(f"  rule {glob} {rule} matched no case (stale expected.txt?)")
    if total is not None and len(results) != total and not partial:
        problems.append(f"  {len(results)} cases ran, {total} expected")
    passed = sum(n for (_, o), n in counts.items() if o == "pass")
    by_design = sum(n for (_, o), n in counts.items() if o.endswith("(by design)"))
    print(f"{len(results)} cases: {passed} passed, {by_design} refused or unimplemented by design, "
          f"{len(unexpected)} unexpected")
    if problems:
        print("Unexpected:")
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
