"""Presets: YAML files of RunConfig settings, found in a checkout's presets/ or an installed wheel."""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ffterm_core.config import ConfigError, RunConfig, from_dict, load_yaml_text
from ffterm_core.store.validation import UnreadableFile, read_text

DEFAULT_PRESET = "quick-ff-fashionmnist"


class PresetError(ConfigError):
    """An unknown preset name or an unreadable preset file."""


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    path: Path


PRESETS_ENV = "FFTERM_PRESETS"


def presets_dir() -> Path:
    """The folder of the shipped presets.

    In order: ``$FFTERM_PRESETS``; the checkout's ``presets/`` (a source tree or an editable install, where
    this file is ``core/ffterm_core/store/presets.py``); ``share/ffterm/presets`` under the installed prefix
    (the app's wheel puts them there)."""
    if os.environ.get(PRESETS_ENV):
        return Path(os.environ[PRESETS_ENV])
    checkout = Path(__file__).resolve().parents[3] / "presets"
    if checkout.is_dir():
        return checkout
    installed = Path(sysconfig.get_path("data")) / "share" / "ffterm" / "presets"
    if installed.is_dir():
        return installed
    raise PresetError(
        f"no presets folder (looked in {checkout} and {installed}); set {PRESETS_ENV} to ffterm's presets/"
    )


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
