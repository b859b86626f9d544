"""Protocol templates inside official files at a pinned commit (fetched, SHA-256 checked: `download_checked`).

Some protocols keep their prompt text inside a Python source file (InfiniteBench ``src/prompt.py``,
LongMab-PO ``src/evaluation/template.py``). We never import or execute such a file: :func:`python_literal`
parses it with :mod:`ast` and evaluates only the literal on the right of one module-level assignment
(``ast.literal_eval``), so the text we use is exactly the string constant in the pinned file.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

def python_literal(source: str, name: str, origin: str) -> Any:
    """The literal assigned to module-level ``name`` in Python ``source`` (parsed, not executed)."""
    try:
        tree = ast.parse(source, filename=origin)
    except SyntaxError as error:
        raise ValueError(f"{origin}: not Python source ({error})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{origin}: {name} is not a plain literal") from None
    raise ValueError(f"{origin}: no module-level assignment to {name}")


def template_from(path: Path, variable: str, key: str) -> str:
    """Template ``key`` of dict ``variable`` in a ``.py`` file in the official format, else the file's text."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    table = python_literal(text, variable, str(path))
    if not isinstance(table, dict) or not isinstance(table.get(key), str):
        raise ValueError(f"{path}: {variable}[{key!r}] is not a string")
    return table[key]


def local_override(metadata: dict[str, Any], key: str, env: str) -> Path | None:
    """A local file named by ``--metadata`` ``key`` (wins) or environment variable ``env``; None if neither."""
    value = metadata.get(key) or os.environ.get(env)
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{key if metadata.get(key) else env}: {path} does not exist")
    return path
