"""Presets: YAML files of RunConfig settings, found in a checkout's presets/ or an installed wheel."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig, from_dict, load_yaml_text
from .validation import UnreadableFile, read_text

DEFAULT_PRESET = "quick-ff-fashionmnist"


class PresetError(ConfigError):
    """An unknown preset name or an unreadable preset file."""


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    path: Path


def presets_dir() -> Path:
    """The folder of the shipped presets (the checkout's presets/, installed as ``ffterm.presets``)."""
    return Path(str(resources.files("ffterm.presets")))


def list_presets() -> list[PresetInfo]:
    out = []
    for path in sorted(presets_dir().glob("*.yaml")):
        data = load_yaml_text(path.read_text(), str(path))
        out.append(PresetInfo(path.stem, str(data.get("description", "")), path))
    return out


def _find(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.is_dir():
        raise PresetError(f"{candidate} is a directory; give a preset name (see `ffterm presets`) or a YAML file")
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise PresetError(
                f"preset file {candidate} does not exist; give a preset name (see `ffterm presets`) or a YAML path"
            )
        return candidate
    path = presets_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(p.name for p in list_presets())
        raise PresetError(f"unknown preset {name_or_path!r}; valid presets: {names}")
    return path


def load_preset(name_or_path: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The validated RunConfig of a preset (name or YAML path) with overrides applied."""
    path = _find(name_or_path)
    try:
        text = read_text(path, "preset", "save it as UTF-8 text you can read, or pick another preset")
    except UnreadableFile as exc:
        raise PresetError(str(exc)) from None
    data = load_yaml_text(text, str(path))
    data.setdefault("name", path.stem)
    try:
        return from_dict({**data, **(overrides or {})})
    except ConfigError as exc:
        where = "override" if overrides and str(exc).split(":")[0] in overrides else str(path)
        raise ConfigError(f"{where}: {exc}") from None
