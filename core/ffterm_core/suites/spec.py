"""Suite files: which runs a suite makes (presets × overrides × seeds) and which study table each feeds.

A suite is a YAML file (the built-in ones live in the presets' `suites/` folder)::

    description: FF, BP/FF and BP on MNIST → Table 1
    seeds: 10                    # seeds per setting (the command's --seeds replaces it)
    set: {device: auto}          # optional: settings for every run
    probe_layer: 3               # optional: the layer whose linear probe feeds Tables 7-8 (default: last)
    runs:
      - presets: [ff-mnist, bpff-mnist, bp-mnist]
        tables: [table1, table2]
      - preset: bp-mnist
        label: l1                # distinguishes this setting's folder from plain bp-mnist
        set: {act_l1: 2.5e-6}
        vary: {heldout_class: [0, 1]}   # one setting per value (several keys: every combination)
        seeds: 1
        tables: [table9]

Every mistake (unknown key, preset, table or setting, a wrong value) is a `SuiteError` naming the file
and line, raised before anything runs. A suite file is untrusted: its YAML is bounded (`MAX_SUITE_BYTES`,
`MAX_YAML_NODES` counted with anchors expanded, before any Python object is built), a plan beyond
`MAX_RUNS` runs is refused before it is expanded, and every setting's folder is one safe path component
inside the suite folder, whatever its label, name or varied values say.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import yaml

from ffterm_core.config import FIELD_NAMES, ConfigError, RunConfig, to_dict
from ffterm_core.store.presets import PresetError, load_preset, presets_dir
from ffterm_core.store.rundir import safe_name

# table targets: name → what it reports (the summary lays each out as the study does)
TABLES: dict[str, str] = {
    "table1": "Table 1: test accuracy",
    "table2": "Table 2: sparsity per layer",
    "table3": "Table 3: ensemble size (% of units) per layer",
    "table4": "Table 4: fraction of positive incoming weights ρ⁺ per layer",
    "table5": "Table 5: bias per layer",
    "table7": "Table 7: linear-probe accuracy on the held-out class",
    "table8": "Table 8: linear-probe accuracy on all classes, per held-out class",
    "heldout-ensembles": "The held-out class's ensemble and its overlap with the seen classes' ensembles",
    "table9": "Table 9: sparsity of BP with the activation-ℓ1 penalty",
    "fig12": "Fig. 12: layer-1 Jaccard matrices, BP with activation-ℓ1 vs FF",
    "table10": "Table 10: representation similarity between models (SVCCA, CKA, dCor) per layer",
    "fig13": "Fig. 13: layer-by-layer linear CKA within FF networks",
    "table11": "Table 11: test accuracy with ℓ1 goodness",
    "table12": "Table 12: sparsity per layer with ℓ1 goodness",
    "table13": "Table 13: ensemble size (% of units) per layer with ℓ1 goodness",
}
PROBE_TABLES = frozenset({"table7", "table8"})
SIMILARITY_TABLES = frozenset({"table10", "fig13"})

SUITE_KEYS = ("description", "seeds", "set", "probe_layer", "runs")
ENTRY_KEYS = ("preset", "presets", "label", "set", "vary", "seeds", "tables")
MAX_RUNS = 10_000  # runs in one suite: far beyond the study's (~400), far below what exhausts memory
MAX_SUITE_BYTES = 1_000_000
MAX_YAML_NODES = 100_000  # YAML nodes with every anchor's uses expanded (a billion-laughs file is refused)
_MAX_NAME = 200  # a setting's folder name (file systems allow 255 bytes)


class SuiteError(ValueError):
    """A suite that cannot be used as asked; one line naming the file (and line) or directory and the fix."""


@dataclass(frozen=True)
class PlannedRun:
    """One run of a suite: its setting (the folder its seeds share), seed, settings and table targets."""

    setting: str
    seed: int
    config: RunConfig
    tables: tuple[str, ...]

    @property
    def rel_dir(self) -> str:
        return f"{self.setting}/seed-{self.seed}"

    @property
    def needs_probes(self) -> bool:
        return bool(PROBE_TABLES & set(self.tables))


@dataclass(frozen=True)
class SettingGroup:
    """The runs of one setting (same config except the seed): the unit a batched executor takes whole."""

    setting: str
    runs: tuple[PlannedRun, ...]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    source: str
    runs: tuple[PlannedRun, ...]
    probe_layer: int | None = None

    def groups(self) -> list[SettingGroup]:
        """The runs grouped by setting, in the suite's order."""
        order: dict[str, list[PlannedRun]] = {}
        for run in self.runs:
            order.setdefault(run.setting, []).append(run)
        return [SettingGroup(name, tuple(runs)) for name, runs in order.items()]


# ---- YAML with line numbers ------------------------------------------------------------------
class _Lined(dict[Any, Any]):
    """A mapping that remembers the line of each key (1-based) and its own."""

    line: int = 0
    lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _expanded_size(node: yaml.Node, seen: dict[int, int], limit: int) -> int:
    """Nodes under `node` with aliases expanded (each anchor counted at every use), up to `limit` + 1."""
    key = id(node)
    if key in seen:
        if seen[key] < 0:
            raise ValueError("an anchor that contains itself")
        return seen[key]
    seen[key] = -1  # in progress: a use of it below is a cycle
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        total += _expanded_size(child, seen, limit)
        if total > limit:
            break
    seen[key] = min(total, limit + 1)
    return seen[key]


def load_bounded_yaml(text: str, source: str) -> Any:
    """A suite file's data; SuiteError when it is not YAML or is too large once its anchors are expanded."""
    if len(text) > MAX_SUITE_BYTES:
        raise SuiteError(f"{source}: {len(text):,} characters; a suite file holds at most {MAX_SUITE_BYTES:,}")
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}, MAX_YAML_NODES) > MAX_YAML_NODES:
            raise SuiteError(
                f"{source}: more than {MAX_YAML_NODES:,} YAML values once its anchors (&/*) are expanded; "
                "write the suite out plainly"
            )
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{source}{where}: not valid YAML; fix the file's syntax") from None
    except (RecursionError, ValueError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SuiteError(f"{source}: not a usable suite file ({why}); write the suite out plainly") from None
    finally:
        loader.dispose()


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Lined:
    mapping = _Lined(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse(text: str, source: str) -> _Lined:
    data = load_bounded_yaml(text, source)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, _Lined):
        raise SuiteError(f"{source}: a suite is a mapping with a `runs:` list (see the built-in suites)")
    return data


# ---- finding suites ------------------------------------------------------------------------------
def suites_dir() -> Path:
    return presets_dir() / "suites"


def list_suites() -> list[tuple[str, str]]:
    """(name, description) of the built-in suites."""
    out = []
    for path in sorted(suites_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out.append((path.stem, str(data.get("description", "")) if isinstance(data, dict) else ""))
    return out


def is_suite(name_or_path: str) -> bool:
    """Whether the name is a built-in suite or a YAML file with a `runs:` list (else: a preset)."""
    if (suites_dir() / f"{name_or_path}.yaml").is_file():
        return True
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            data = load_bounded_yaml(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError):
            return False
        return isinstance(data, dict) and "runs" in data
    return False


def load_suite(
    name_or_path: str, *, seeds: int | None = None, first_seed: int = 0, overrides: dict[str, Any] | None = None
) -> Suite:
    """A validated suite. `seeds` replaces every entry's seed count; `overrides` apply to every run last."""
    builtin = suites_dir() / f"{name_or_path}.yaml"
    path = builtin if builtin.is_file() else Path(name_or_path)
    if not path.is_file():
        names = ", ".join(n for n, _ in list_suites())
        raise SuiteError(f"unknown suite {name_or_path!r}; built-in suites: {names} (or give a preset or a YAML file)")
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise SuiteError(f"{source}: cannot be read ({why}); give a readable suite file") from None
    data = _parse(text, source)
    _check_keys(data, SUITE_KEYS, source, "suite")
    file_seeds = _count(data, "seeds", source, default=1)
    default_seeds = seeds if seeds is not None else file_seeds
    common = _mapping(data, "set", source)
    probe_layer = _count(data, "probe_layer", source, default=None) if "probe_layer" in data else None
    entries = data.get("runs")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{source} line {data.lines.get('runs', data.line)}: `runs:` must be a non-empty list")
    runs: list[PlannedRun] = []
    configs: dict[str, tuple[dict[str, Any], int]] = {}
    for entry in entries:
        if not isinstance(entry, _Lined):
            raise SuiteError(f"{source} line {data.lines['runs']}: each item of `runs:` must be a mapping")
        common_line = data.lines.get("set")
        runs.extend(
            _expand(
                entry,
                source,
                common,
                common_line,
                overrides or {},
                seeds,
                default_seeds,
                first_seed,
                configs,
                len(runs),
            )
        )
    return Suite(
        safe_name(Path(name_or_path).stem if not builtin.is_file() else name_or_path),
        str(data.get("description", "")),
        source,
        _merged(runs),
        probe_layer,
    )


def _merged(runs: list[PlannedRun]) -> tuple[PlannedRun, ...]:
    """One run per folder: entries that plan the same setting and seed share it (their tables joined)."""
    by_dir: dict[str, PlannedRun] = {}
    for run in runs:
        first = by_dir.get(run.rel_dir)
        tables = run.tables if first is None else (*first.tables, *(t for t in run.tables if t not in first.tables))
        by_dir[run.rel_dir] = PlannedRun(run.setting, run.seed, run.config, tables)
    return tuple(by_dir.values())


def check_plan_size(runs: int, where: str) -> None:
    """SuiteError when a plan of `runs` runs is beyond MAX_RUNS (said before any run is made)."""
    if runs > MAX_RUNS:
        raise SuiteError(
            f"{where}: {runs:,} runs planned; a suite makes at most {MAX_RUNS:,}: fewer seeds or values to vary"
        )


def preset_suite(preset: str, *, seeds: int, first_seed: int = 0, overrides: dict[str, Any] | None = None) -> Suite:
    """A one-setting suite: a preset over seeds (its tables: those of the study that fit the preset)."""
    overrides = {k: v for k, v in (overrides or {}).items() if k != "seed"}
    check_plan_size(seeds, f"{preset} over {seeds:,} seeds")
    try:
        cfg = load_preset(preset, overrides)
    except PresetError as exc:
        if "unknown preset" not in str(exc):
            raise SuiteError(str(exc)) from None
        suites = ", ".join(n for n, _ in list_suites())
        raise SuiteError(f"{preset!r} is neither a suite ({suites}) nor a preset (see `ffterm presets`)") from None
    except ConfigError as exc:
        raise SuiteError(str(exc)) from None
    tables = (
        ("table11", "table12", "table13")
        if cfg.goodness == "l1"
        else ("table1", "table2", "table3", "table4", "table5")
    )
    setting = safe_name(cfg.name, _MAX_NAME)
    runs = tuple(PlannedRun(setting, s, cfg.replace(seed=s), tables) for s in range(first_seed, first_seed + seeds))
    return Suite(setting, cfg.description, preset, runs)


def _expand(
    entry: _Lined,
    source: str,
    common: dict[str, Any],
    common_line: int | None,
    overrides: dict[str, Any],
    seeds_override: int | None,
    default_seeds: int,
    first_seed: int,
    configs: dict[str, tuple[dict[str, Any], int]],
    planned: int,
) -> list[PlannedRun]:
    line = entry.line
    _check_keys(entry, ENTRY_KEYS, source, "run entry")
    presets = _presets(entry, source)
    entry_set = _mapping(entry, "set", source)
    vary = _mapping(entry, "vary", source)
    for key, values in vary.items():
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{source} line {entry.lines['vary']}: vary.{key} must be a non-empty list of values")
    tables = entry.get("tables", [])
    if not isinstance(tables, list) or not tables:
        raise SuiteError(
            f"{source} line {entry.lines.get('tables', line)}: `tables:` must list the study tables this entry feeds ({', '.join(TABLES)})"
        )
    for t in tables:
        if t not in TABLES:
            raise SuiteError(f"{source} line {entry.lines['tables']}: unknown table {t!r}; known: {', '.join(TABLES)}")
    entry_seeds = _count(entry, "seeds", source, default=default_seeds)
    n_seeds = seeds_override if seeds_override is not None else entry_seeds
    label = entry.get("label")
    check_plan_size(
        planned + len(presets) * math.prod(len(v) for v in vary.values()) * n_seeds, f"{source} line {line}"
    )
    runs = []
    for preset in presets:
        for combo in itertools.product(*vary.values()):
            varied = dict(zip(vary, combo))
            settings = {**common, **entry_set, **varied, **{k: v for k, v in overrides.items() if k != "seed"}}
            try:
                cfg = load_preset(preset, settings)
            except ConfigError as exc:
                reason = str(exc).split(": ", 1)[-1]  # load_preset prefixes where the setting came from
                where = _setting_line(reason.split(":", 1)[0], entry, common, common_line) or line
                raise SuiteError(f"{source} line {where}: {preset}: {reason}") from None
            parts = [cfg.name, *([str(label)] if label else []), *(f"{k}{v}" for k, v in varied.items())]
            name = safe_name("-".join(parts), _MAX_NAME)  # one folder inside the suite's, whatever the parts say
            key_cfg = {k: v for k, v in to_dict(cfg).items() if k != "seed"}
            if name in configs and configs[name][0] != key_cfg:
                raise SuiteError(
                    f"{source} line {line}: setting {name!r} is also made at line {configs[name][1]} with other "
                    "settings; give one of the entries a `label:`"
                )
            configs[name] = (key_cfg, line)
            runs += [
                PlannedRun(name, s, cfg.replace(seed=s), tuple(tables)) for s in range(first_seed, first_seed + n_seeds)
            ]
    return runs


def _setting_line(key: str, entry: _Lined, common: dict[str, Any], common_line: int | None) -> int | None:
    """The line where the setting `key` is given: the entry's `set:`/`vary:`, else the suite's `set:`."""
    for block in ("vary", "set"):
        value = entry.get(block)
        if isinstance(value, _Lined) and key in value:
            return value.lines.get(key, entry.lines[block])
    return common_line if key in common else None


def _presets(entry: _Lined, source: str) -> list[str]:
    if ("preset" in entry) == ("presets" in entry):
        raise SuiteError(f"{source} line {entry.line}: a run entry needs exactly one of `preset:` or `presets:`")
    key = "preset" if "preset" in entry else "presets"
    names = entry[key] if key == "presets" else [entry[key]]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SuiteError(f"{source} line {entry.lines[key]}: `{key}:` must name presets (see `ffterm presets`)")
    for n in names:
        try:
            load_preset(n)
        except ConfigError as exc:
            raise SuiteError(f"{source} line {entry.lines[key]}: {exc}") from None
    return names


def _check_keys(data: _Lined, allowed: tuple[str, ...], source: str, what: str) -> None:
    for key in data:
        if key not in allowed:
            raise SuiteError(
                f"{source} line {data.lines.get(key, data.line)}: unknown {what} key {key!r}; allowed: {', '.join(allowed)}"
            )


def _mapping(data: _Lined, key: str, source: str) -> dict[str, Any]:
    """A `set:` or `vary:` mapping, its keys checked against the run settings."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise SuiteError(f"{source} line {data.lines[key]}: `{key}:` must be a mapping of settings")
    for name in value:
        if name not in FIELD_NAMES or name == "seed":
            line = value.lines.get(name, data.lines[key]) if isinstance(value, _Lined) else data.lines[key]
            why = (
                "seeds are set by `seeds:`"
                if name == "seed"
                else f"allowed: {', '.join(n for n in FIELD_NAMES if n != 'seed')}"
            )
            raise SuiteError(f"{source} line {line}: unknown setting {name!r} in `{key}:`; {why}")
    return dict(value)


@overload
def _count(data: _Lined, key: str, source: str, default: int) -> int: ...
@overload
def _count(data: _Lined, key: str, source: str, default: None) -> int | None: ...
def _count(data: _Lined, key: str, source: str, default: int | None) -> int | None:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuiteError(f"{source} line {data.lines[key]}: `{key}:` must be a whole number >= 1, got {value!r:.40}")
    return value
