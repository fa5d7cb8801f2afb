"""The bundled scenario library: YAML files shipped inside the package, so every install has them.

Copy one and edit it; ``pushsim scenarios`` lists them and ``pushsim run NAME`` runs one.
"""

from __future__ import annotations

from pathlib import Path

SCENARIOS_DIR = Path(__file__).resolve().parent


def bundled() -> list[Path]:
    """Every bundled scenario file, sorted by name."""
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """A scenario by bundled name (``smoke``) or by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    found = SCENARIOS_DIR / f"{name_or_path}.yaml"
    return found if found.exists() else p
