"""The shape of the code itself: no class in emotiond/ grows past MAX_CLASS_LINES.

A class that long has taken on several jobs (the MQTT sink once had 31 methods for four threads);
split it rather than raise the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emotiond"
MAX_CLASS_LINES = 300


def class_sizes(root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(lines, "path:Class") for every class in the package, nested ones included."""
    sizes = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                sizes.append((node.end_lineno - first + 1, f"{path.relative_to(root.parent)}:{node.name}"))
    return sorted(sizes, reverse=True)


def test_no_class_is_longer_than_the_limit() -> None:
    sizes = class_sizes()
    assert len(sizes) > 20  # the walk found the package's classes
    too_long = [f"{name} ({lines} lines)" for lines, name in sizes if lines > MAX_CLASS_LINES]
    assert not too_long, f"classes over {MAX_CLASS_LINES} lines: {', '.join(too_long)}"


def test_the_measure_counts_a_class_from_decorator_to_last_line(tmp_path: Path) -> None:
    pkg = tmp_path / "emotiond"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    (pkg / "big.py").write_text(f"import dataclasses\n\n\n@dataclasses.dataclass\nclass Big:\n{body}\n")
    assert class_sizes(pkg) == [(MAX_CLASS_LINES + 2, "emotiond/big.py:Big")]
