"""Prints the one summary line of a meson test run from its testlog.json."""
import json
import sys

counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0,
          "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0}
try:
    with open(sys.argv[1], encoding="utf-8") as log:
        for line in log:
            result = json.loads(line).get("result", "ERROR")
            counts[result] = counts.get(result, 0) + 1
except FileNotFoundError:
    pass

passed = counts["OK"] + counts["EXPECTEDFAIL"]
failed = (counts["FAIL"] + counts["TIMEOUT"] + counts["ERROR"]
          + counts["UNEXPECTEDPASS"])
print(f"{passed} passed, {failed} failed, {counts['SKIP']} skipped")
