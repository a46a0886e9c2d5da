#!/usr/bin/env python3
"""Splits the pairs that the `duplicates` tool lists (read from stdin) into
those made only of lines inside Go `import ( ... )` blocks and the rest.

The tool means to pass over import lines, but reads the lines of a grouped
import block as code, so two files that import the same six standard
packages count as a pair. Run from the tree's top:

    duplicates --most 200 | scripts/duplicate-pairs.py

It prints the two counts, then the pairs that are not import lists alone.
"""

import re
import sys


def import_lines(path):
    """The line numbers (from 1) inside the file's import ( ... ) blocks."""
    inside, lines = False, set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("import ("):
                inside = True
            elif inside and line.strip() == ")":
                inside = False
            elif inside:
                lines.add(n)
    return lines


def only_imports(path, first, last):
    if not path.endswith(".go"):
        return False
    inside = import_lines(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read().split("\n")
    return all(n in inside or not text[n - 1].strip() for n in range(first, last + 1))


pair = re.compile(r"D\d+ (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)")
imports, code = 0, []
for row in sys.stdin:
    m = pair.match(row)
    if not m:
        continue
    a, a1, a2, b, b1, b2 = m.groups()
    if only_imports(a, int(a1), int(a2)) and only_imports(b, int(b1), int(b2)):
        imports += 1
    else:
        code.append(row.rstrip("\n"))
print(f"{imports} pairs are Go import lists only; {len(code)} are code:")
print("\n".join(code))
