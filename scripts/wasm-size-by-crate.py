#!/usr/bin/env python3
"""Sums a wasm module's code and data by the Rust crate each item comes from, from `twiggy top
--format csv` (read on stdin), and prints the biggest. Items are named as rustc names them; an
item of a trait impl counts for the crate of its type (`<yamux::Stream as ..>` is yamux's);
wasm-bindgen's describe functions and exports, which wasm-bindgen removes later, are left out."""
import csv
import re
import sys
from collections import Counter

top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
sizes = Counter()
for row in csv.DictReader(sys.stdin):
    name, size = row["Name"], int(row["ShallowSize"])
    if name.startswith(('"function names"', "custom section", "export ", "__wbindgen_describe")):
        continue
    if name.startswith("data segment") or re.match(r"^data\[[0-9]+\]", name):
        crate = "(data segments: strings, tables)"
    else:
        m = re.match(r"^<*&?(?:mut )?(?:dyn )?([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::", name)
        crate = m.group(1) if m else "(other)"
    sizes[crate] += size
total = sum(sizes.values())
print(f"by crate, before wasm-bindgen and wasm-opt ({total} bytes of code and data):")
for crate, size in sizes.most_common(top):
    print(f"  {size:>9}  {100 * size / total:5.1f} %  {crate}")
