"""Largest files and functions (in lines) of the package at a git ref, for before/after notes of a change:
``python .ci/sizes.py . main`` and ``python .ci/sizes.py . HEAD``."""

import ast
import subprocess
import sys

repo, ref = sys.argv[1], sys.argv[2]
files = [f for f in subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", ref], capture_output=True,
         text=True, check=True).stdout.split() if f.endswith(".py") and f.split("/")[0] in
         ("lr_eval", "reward", "tasks", "train", "leaderboards", "testing")]
sizes, funcs = [], []
for f in files:
    src = subprocess.run(["git", "-C", repo, "show", f"{ref}:{f}"], capture_output=True, text=True).stdout
    sizes.append((src.count("\n"), f))
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            funcs.append((node.end_lineno - node.lineno + 1, f"{f}:{node.name}"))
print(f"{ref}: {len(files)} files, {sum(s for s, _ in sizes)} lines")
print("largest files:", ", ".join(f"{f} {n}" for n, f in sorted(sizes, reverse=True)[:8]))
print("largest functions:", ", ".join(f"{f} {n}" for n, f in sorted(funcs, reverse=True)[:8]))
