"""Which submodules an adapter file must hold, at which channel counts: the official module sets.

An adapter file (``hm*_reference``, ``hm*_motion``, ``hm*_animatediff*``) is a list of submodules
("slots": ``reference_modules_up.3``, ``motion_down.0``, ``down_blocks.1.motion_modules.0``...), each
at the channel count of the UNet block it sits at. The loaders build every submodule from its own
tensors, so a file that lacks whole submodules, or holds them at other widths, would otherwise load
without complaint. :func:`check_module_set` compares a state dict's slots and channel counts with the
sets of the official files (``model_files/official_layout.json``) and raises a
:class:`~hellomeme_core.errors.WeightFileError` naming the file, the first missing or mismatching
tensor, what the file holds and which official file it resembles.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..errors import WeightFileError
from ..model_files import layout

Shapes = Mapping[str, tuple[int, ...]]

_SLOT = re.compile(
    r"^(reference_modules_(?:down|up)\.\d+|reference_modules_mid|motion_(?:down|up)\.\d+"
    r"|(?:down|up)_blocks\.\d+\.motion_modules\.\d+|mid_block\.motion_modules\.\d+)\."
)
# (local key, axis): where a submodule's channel count is read, first match wins. One entry per module
# kind: v1-v5 reference attentions, STK reference modules, SK motion modules, SK motion V5, AnimateDiff.
_CHANNEL_KEYS: tuple[tuple[str, int], ...] = (
    ("attn1.to_q.weight", 0),
    ("attn.conv_in.weight", 1),
    ("time_emb_proj.weight", 0),
    ("attn1.proj_in.weight", 1),
    ("proj_in.weight", 1),
)
FIX = "Download the file again, or select the file of the version it belongs to."


def slot_of(key: str) -> str | None:
    """``reference_modules_up.3.attn1.to_q.weight`` -> ``reference_modules_up.3`` (None: no submodule key)."""
    m = _SLOT.match(key)
    return m.group(1) if m else None


def group_slots(shapes: Shapes) -> dict[str, dict[str, tuple[int, ...]]]:
    """Slot -> {local key: shape}, slots in order of first appearance."""
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        slot = slot_of(key)
        if slot is not None:
            out.setdefault(slot, {})[key[len(slot) + 1:]] = tuple(shape)
    return out


def channel_key(local: Mapping[str, tuple[int, ...]]) -> tuple[str, int] | None:
    """The (local key, axis) that gives the channel count of a submodule with these local keys."""
    for key, axis in _CHANNEL_KEYS:
        if key in local and len(local[key]) > axis:
            return key, axis
    return None


@dataclass(frozen=True)
class Slot:
    name: str  # ``reference_modules_up.3``
    channels: int | None
    channel_key: str | None  # local key the channels are read from (``attn1.to_q.weight``)
    axis: int
    first_tensor: str  # full name of the first parameter of the slot in the official file


@dataclass(frozen=True)
class ModuleSet:
    """The submodules of one official file layout, in the file's order."""

    label: str  # "songkey/hm3_reference, songkey/hm4_reference"
    slots: tuple[Slot, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.slots)

    def restricted(self, prefixes: tuple[str, ...], label: str) -> "ModuleSet":
        """The same set without the slots outside ``prefixes`` (e.g. the up modules only)."""
        return ModuleSet(label, tuple(s for s in self.slots if s.name.startswith(prefixes)))

    def summary(self) -> str:
        return summarize([(s.name, s.channels) for s in self.slots])


def summarize(slots: Iterable[tuple[str, int | None]]) -> str:
    """``reference_modules_up.0-3 (1280/1280/1280/640 channels)``-style text, one part per slot group."""
    groups: dict[str, list[tuple[str, int | None]]] = {}
    for name, channels in slots:
        head, _, index = name.rpartition(".")
        key, idx = (head, index) if index.isdigit() else (name, "")
        groups.setdefault(key, []).append((idx, channels))
    parts = []
    for head, items in groups.items():
        idx = [i for i, _ in items if i]
        if not idx:
            label = head
        elif len(idx) == 1:
            label = f"{head}.{idx[0]}"
        elif [int(i) for i in idx] == list(range(int(idx[0]), int(idx[0]) + len(idx))):
            label = f"{head}.{idx[0]}-{idx[-1]}"
        else:
            label = f"{head}.{{{','.join(idx)}}}"
        chans = "/".join("?" if c is None else str(c) for _, c in items)
        parts.append(f"{label} ({chans} ch)")
    return ", ".join(parts) if parts else "no submodules"


def _slots_of(shapes: Shapes, buffers: set[str]) -> tuple[Slot, ...]:
    out = []
    for name, local in group_slots(shapes).items():
        ck = channel_key(local)
        params = [k for k in local if f"{name}.{k}" not in buffers]
        first = f"{name}.{(params or list(local))[0]}"
        channels = None if ck is None else int(local[ck[0]][ck[1]])
        out.append(Slot(name, channels, None if ck is None else ck[0], 0 if ck is None else ck[1], first))
    return tuple(out)


@lru_cache(maxsize=None)
def official_module_sets(official_class: str) -> tuple[ModuleSet, ...]:
    """The distinct module sets of the official files loaded into ``official_class`` (e.g.
    ``HM3ReferenceAdapter``, ``MotionAdapter``), from the official layout."""
    by_slots: dict[tuple[Slot, ...], list[str]] = {}
    for repo in layout.official_repos():
        if layout.official_class(repo) != official_class:
            continue
        slots = _slots_of(layout.expected_tensors(repo), set(layout.buffer_keys(repo)))
        by_slots.setdefault(slots, []).append(repo)
    if not by_slots:
        raise KeyError(f"no official file is loaded into {official_class!r}")
    return tuple(ModuleSet(", ".join(repos), slots) for slots, repos in by_slots.items())


def closest_official(shapes: Shapes) -> str:
    """`` It resembles songkey/hm3_reference (v3): 45 of its 60 tensors present.`` (or an empty string)."""
    shapes = {k: tuple(v) for k, v in shapes.items()}
    if not shapes:
        return " It holds no tensors."
    repos = layout.guess_repos(set(shapes), shapes)
    if not repos:
        return " It shares no tensor names with any official HelloMeme file."
    repo = repos[0]
    expected = layout.expected_tensors(repo)
    same = sum(1 for k, s in shapes.items() if expected.get(k) == s)
    versions = "/".join(layout.repo_versions(repo))
    if same == len(expected) == len(shapes):
        return f" Its tensors are exactly those of {repo} ({versions})."
    others = sum(1 for k in shapes if k not in expected)
    extra = f", plus {others} tensor(s) it does not have" if others else ""
    return (f" Closest official file: {repo} ({versions}), {same} of its {len(expected)} tensors present with their "
            f"official shapes{extra}.")


def _choose(file_slots: set[str], sets: tuple[ModuleSet, ...]) -> ModuleSet:
    """The set the file is meant to be: an exact slot match, else no extra slots and fewest missing."""
    def cost(ms: ModuleSet) -> tuple[int, int, int]:
        names = set(ms.names)
        return (names != file_slots, len(file_slots - names), len(names - file_slots))

    return min(sets, key=cost)


def check_module_set(shapes: Shapes, source: str, what: str, sets: tuple[ModuleSet, ...]) -> ModuleSet:
    """Check the slots and channel counts of ``shapes`` (full key -> shape) against ``sets``.

    Returns the matching set. Raises :class:`WeightFileError` naming ``source``, the first missing or
    mismatching tensor (in the official order), the official set, what the file holds and the
    official file it resembles. Tensors inside a slot are left to the strict loader.
    """
    shapes = {k: tuple(v) for k, v in shapes.items()}
    file_slots = group_slots(shapes)
    chosen = _choose(set(file_slots), sets)
    holds = summarize(
        (name, None if (ck := channel_key(local)) is None else int(local[ck[0]][ck[1]])) for name, local in file_slots.items()
    )
    official = f"the official files ({chosen.label}) hold {chosen.summary()}"

    def fail(problem: str) -> WeightFileError:
        return WeightFileError(
            f"{source} is not a complete {what} file: {problem}. It holds {holds}; {official}. The file is "
            f"truncated, damaged or belongs to another version.{closest_official(shapes)} {FIX}"
        )

    missing = [s for s in chosen.slots if s.name not in file_slots]
    for slot in chosen.slots:
        local = file_slots.get(slot.name)
        if local is None:
            more = f" ({len(missing)} submodules missing in all)" if len(missing) > 1 else ""
            raise fail(f"submodule {slot.name!r} is missing, first missing tensor {slot.first_tensor!r}{more}")
        if slot.channel_key is None or slot.channel_key not in local:
            continue  # the strict loader names the missing tensor
        shape = local[slot.channel_key]
        found = int(shape[slot.axis]) if len(shape) > slot.axis else None
        if found != slot.channels:
            raise fail(
                f"submodule {slot.name!r} has {found} channels (tensor {slot.name + '.' + slot.channel_key!r} has shape "
                f"{shape}) where the official file has {slot.channels}"
            )
    extra = [name for name in file_slots if name not in chosen.names]
    if extra:
        first = f"{extra[0]}.{next(iter(file_slots[extra[0]]))}"
        raise fail(f"submodule {extra[0]!r} is not part of that layout (first unexpected tensor {first!r})")
    return chosen
