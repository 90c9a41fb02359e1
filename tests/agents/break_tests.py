"""Test agent: makes the seeded project's test fail (greet() loses its exclamation mark)."""

from pathlib import Path

Path("greeting.py").write_text(
    'def greet(name: str) -> str:\n    return f"Hello, {name}"\n', encoding="utf-8"
)
