"""The rule types Argus knows: each rule module registers itself here, in one place.

A rule module declares, at its end, one ``RuleType`` and passes it to ``register``:

* ``config``: its pydantic model (``type: Literal["<type>"]`` on top of
  ``selector.rules.config.RuleConfigBase`` or ``TrackRuleConfig``);
* ``build``: its factory, ``build(cfg, ctx) -> Rule`` (``ctx``: the camera's zones, lines
  and the model's class names, see ``BuildContext``);
* ``events``: for each event type it raises, the words operators read: a short
  ``label`` ("Camera covered") and a ``reason`` template ("{count} {people} in {zone}").

Everything else is built from the registry: the config's rule union
(``argus.config``), the rulebook, validation, ``GET /api/v1/rule-types`` and the
reason each alert record carries.  The rule modules of this package are found and
imported by ``rule_types()``; a rule defined anywhere else (a plugin, a test) registers
itself when its module is imported.  Adding a rule touches its own module, its tests and
the docs.

Reason templates: ``{name}`` is replaced by a fact of the event (see ``reason_facts``):
the record's fields (``zone``, ``line``, ``direction``, ``label``...), its ``details``
(``count``, ``members``, ``speed``...) and derived words (``object``, ``objects``,
``people``, ``duration``, ``where``).  A part in square brackets is left out when a fact it
names is missing: ``"{count} {people} in {zone}[ for {duration}]"``.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import pkgutil
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypedDict

from selector.event import Event
from selector.ground import GroundModel
from selector.lines import Line
from selector.rules.base import Rule, RuleError
from selector.rules.config import RuleConfigBase, TrackRuleConfig
from selector.zones import PolygonZone

logger = logging.getLogger(__name__)

PLUGIN_GROUP = "argus.rules"
"""Entry-point group of rule modules in other packages (``[project.entry-points."argus.rules"]
mine = "my_package.my_rule"``): imported with the built-in rules, so every process that
loads rules (workers, the alert service) knows them."""
MAX_REASON_LENGTH = 300
"""Longest reason rendered, characters (the event schema's bound)."""

_FACT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


class RuleConfigError(RuleError):
    """A rule config that cannot be built; ``key`` is the config key at fault, if one is.

    Attributes:
        key: The key (``"classes"``, ``"zone"``), or ``None`` for the rule as a whole.
        problem: What is wrong, in words.
    """

    def __init__(self, problem: str, key: str | None = None) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


class TrackArgs(TypedDict):
    """Constructor arguments shared by the rules about tracked objects."""

    rule_id: str
    camera_id: str
    classes: set[int]
    class_names: Sequence[str]
    severity: int
    min_score: float


@dataclass(frozen=True)
class BuildContext:
    """What a rule's factory may use of its camera and of the model.

    Attributes:
        camera_id: The camera the rule watches.
        zones: The camera's zones by name.
        lines: The camera's lines by name.
        class_names: The detector's class names (index = class id).
        ground: The camera's ground calibration, or ``None`` when it has none (rules'
            ``*_m`` keys need one; see :meth:`metres`).
    """

    camera_id: str
    zones: Mapping[str, PolygonZone]
    lines: Mapping[str, Line]
    class_names: Sequence[str]
    ground: GroundModel | None = None

    def metres(self, cfg: RuleConfigBase, key: str) -> float | None:
        """The value of ``cfg``'s ``<key>_m`` (metres), or ``None`` when not given.

        ``<key>_m`` wins over ``<key>`` (which always has a value: its default).

        Raises:
            RuleConfigError: ``<key>_m`` on a camera without a ground calibration.
        """
        value = getattr(cfg, f"{key}_m", None)
        if value is None:
            return None
        if self.ground is None or not self.ground.calibrated:
            raise RuleConfigError(
                f"metres need the ground calibration of camera {self.camera_id!r} "
                f"(its `ground.points`); without one use {key}, in body heights",
                f"{key}_m",
            )
        return float(value)

    def class_ids(self, names: Sequence[str], key: str | None = "classes") -> set[int]:
        """The class ids of ``names``; an unknown name is a ``RuleConfigError`` on ``key``."""
        index = {n: i for i, n in enumerate(self.class_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise RuleConfigError(
                f"unknown class {unknown} for this model (e.g. {list(self.class_names[:5])}...)",
                key,
            )
        return {index[n] for n in names}

    def zone(self, name: str, key: str = "zone") -> PolygonZone:
        """The zone ``name``; a missing one is a ``RuleConfigError`` on ``key``."""
        if name not in self.zones:
            raise RuleConfigError(f"camera {self.camera_id!r} has no zone {name!r}", key)
        return self.zones[name]

    def optional_zone(self, name: str | None, key: str = "zone") -> PolygonZone | None:
        """The zone ``name``, or ``None`` (the whole picture) for ``None``."""
        return None if name is None else self.zone(name, key)

    def track_args(self, cfg: TrackRuleConfig) -> TrackArgs:
        """The arguments every track rule's constructor takes, from its config."""
        return TrackArgs(
            rule_id=cfg.rule_id,
            camera_id=self.camera_id,
            classes=self.class_ids(cfg.classes),
            class_names=self.class_names,
            severity=cfg.severity,
            min_score=cfg.min_score,
        )

    def line(self, name: str, key: str = "line") -> Line:
        """The line ``name``; a missing one is a ``RuleConfigError``."""
        if name not in self.lines:
            raise RuleConfigError(f"camera {self.camera_id!r} has no line {name!r}", key)
        return self.lines[name]


@dataclass(frozen=True)
class EventWords:
    """What operators read about one event type.

    Attributes:
        label: Short name, e.g. ``"Intrusion"``, ``"Camera covered"``.
        reason: Template of the reason in words (see the module docstring).
    """

    label: str
    reason: str

    def __post_init__(self) -> None:
        if not self.label.strip():
            raise ValueError("EventWords.label must not be empty")
        check_template(self.reason)


BuildFn = Callable[[Any, BuildContext], Rule]


@dataclass(frozen=True)
class RuleType:
    """One kind of rule, as its module declares it.

    Attributes:
        type: The config's ``type`` value, e.g. ``"intrusion"``.
        config: The pydantic model of its config (its ``type`` field is
            ``Literal[type]``; extends ``RuleConfigBase``).
        build: ``build(cfg, ctx) -> Rule``: the rule object of a validated config;
            raises ``RuleConfigError`` (or ``RuleError``) for what the model cannot
            check alone (an unknown class, a value the rule refuses).
        events: Event type -> the words operators read (every event type it raises).
        summary: One line on what it watches (default: the config's docstring).
    """

    type: str
    config: builtins.type[RuleConfigBase]
    build: BuildFn
    events: Mapping[str, EventWords]
    summary: str = field(default="")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.type):
            raise ValueError(f"rule type must be a lower-case identifier, got {self.type!r}")
        if not (isinstance(self.config, type) and issubclass(self.config, RuleConfigBase)):
            raise ValueError(f"rule type {self.type!r}: config must extend RuleConfigBase")
        tag = self.config.model_fields.get("type")
        if tag is None or getattr(tag.annotation, "__args__", None) != (self.type,):
            raise ValueError(
                f"rule type {self.type!r}: its config needs type: Literal[{self.type!r}]"
            )
        if not self.events:
            raise ValueError(f"rule type {self.type!r} declares no event types")
        if not self.summary:
            doc = (self.config.__doc__ or "").strip().splitlines()
            object.__setattr__(self, "summary", (doc[0] if doc else self.type).replace("``", ""))

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of its config (what a form for it is built from)."""
        return self.config.model_json_schema()


_lock = threading.RLock()
_types: dict[str, RuleType] = {}
_words: dict[str, EventWords] = {}
_builtins_loaded = False


def register(rule_type: RuleType) -> RuleType:
    """Add a rule type (its module calls this at import); returns it.

    Registering the same declaration again (a module imported twice) is harmless.

    Raises:
        ValueError: Another rule type already has this ``type``, or one of its event
            types.
    """
    with _lock:
        known = _types.get(rule_type.type)
        if known is not None:
            if known.config.__qualname__ == rule_type.config.__qualname__ and (
                known.config.__module__ == rule_type.config.__module__
            ):
                _types[rule_type.type] = rule_type  # a re-import: the newer objects win
                _words.update(rule_type.events)
                return rule_type
            raise ValueError(f"rule type {rule_type.type!r} is registered twice")
        clash = sorted(
            e for e in rule_type.events if e in _words and e not in _events_of(rule_type.type)
        )
        if clash:
            raise ValueError(f"rule type {rule_type.type!r}: event types {clash} are taken")
        _types[rule_type.type] = rule_type
        _words.update(rule_type.events)
    logger.debug("rule type %s registered (%s)", rule_type.type, rule_type.config.__module__)
    return rule_type


def _events_of(type_: str) -> set[str]:
    known = _types.get(type_)
    return set(known.events) if known else set()


def _load_builtins() -> None:
    """Import every module of this package once (each registers its rule, if it has one),
    then the modules other installed packages name under the ``argus.rules`` entry point."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    # Imported without holding _lock: a module registers itself (taking _lock) as it is
    # imported, and Python's import lock must never wait on ours (a deadlock with another
    # thread importing a rule module).  Two first callers may import in parallel: the
    # import system runs each module once.
    package = importlib.import_module("selector.rules")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"selector.rules.{module.name}")
    for entry in entry_points(group=PLUGIN_GROUP):  # rules of other installed packages
        try:
            entry.load()
        except Exception:  # one broken plugin must not take the built-in rules down
            logger.exception("rule plugin %s (%s) failed to load", entry.name, entry.value)
    _builtins_loaded = True


def rule_types() -> dict[str, RuleType]:
    """Every known rule type by ``type``: the package's own, then those registered since."""
    _load_builtins()
    with _lock:
        return dict(_types)


def rule_type(type_: str) -> RuleType | None:
    """The rule type ``type_``, or ``None``."""
    return rule_types().get(type_)


def event_words(event_type: str) -> EventWords | None:
    """The words of an event type, or ``None`` for one no rule declares."""
    _load_builtins()
    with _lock:
        return _words.get(event_type)


# ----------------------------------------------------------------------------- words


def check_template(template: str) -> None:
    """Refuse a reason template that could not render: unbalanced or nested brackets,
    a brace that is not a ``{fact}``.

    Raises:
        ValueError: What is wrong with it.
    """
    if not template.strip():
        raise ValueError("a reason template must not be empty")
    flat = _OPTIONAL.sub(lambda m: m.group(1), template)
    if "[" in flat or "]" in flat:
        raise ValueError(f"reason template {template!r}: unbalanced or nested [ ]")
    if "{" in _FACT.sub("", flat) or "}" in _FACT.sub("", flat):
        raise ValueError(f"reason template {template!r}: braces only around a fact name")


def format_duration(seconds: float) -> str:
    """``"4 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``: how long, for people."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, rest = divmod(s, 3600)
    m = rest // 60
    return f"{h} h {m} min" if m else f"{h} h"


def reason_facts(event: Event) -> dict[str, str]:
    """The facts a reason template may name, as text (absent facts are left out).

    Record fields (``zone``, ``line``, ``direction``, ``label``, ``camera_id``, ``type``),
    every ``details`` value, and: ``object`` / ``objects`` (the label, singular / plural:
    ``"person"``/``"people"``, else the class name and ``"<name>s"``), ``people`` (the
    plural, or the singular when ``count`` is 1), ``where`` (``"in <zone>"``,
    ``"at <line>"``, or ``"in view"``), ``duration`` (``end_s - start_s`` once ended).
    """
    facts: dict[str, str] = {}
    for name in ("camera_id", "type", "zone", "line", "direction", "label"):
        value = getattr(event, name)
        if value is not None and value != "":
            facts[name] = str(value)
    for name, value in (event.details or {}).items():
        if isinstance(value, float):
            facts[name] = f"{value:.1f}"
        elif value is not None:
            facts[name] = str(value)
    singular = event.label or "object"
    plural = plural_of(singular)
    facts["object"], facts["objects"] = singular, plural
    count = (event.details or {}).get("count")
    facts["people"] = singular if count == 1 else plural
    if event.zone:
        facts["where"] = f"in {event.zone}"
    elif event.line:
        facts["where"] = f"at {event.line}"
    else:
        facts["where"] = "in view"
    if event.end_s is not None:
        facts["duration"] = format_duration(event.end_s - event.start_s)
    return facts


_IRREGULAR = {
    "person": "people",
    "knife": "knives",
    "mouse": "mice",
    "sheep": "sheep",
    "skis": "skis",
    "scissors": "scissors",
}


def plural_of(noun: str) -> str:
    """The English plural of a class name: ``person`` -> ``people``, ``bus`` -> ``buses``,
    ``wine glass`` -> ``wine glasses``, ``skis`` -> ``skis`` (the last word changes)."""
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        word = last + "es"
    elif len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def render(template: str, facts: Mapping[str, str]) -> str:
    """``template`` with its facts filled in, as a sentence (first letter upper case):
    optional parts missing a fact are dropped, a required fact missing reads ``?``."""

    def fill(text: str) -> str:
        return _FACT.sub(lambda m: facts[m.group(1)], text)

    def optional(m: re.Match[str]) -> str:
        names = _FACT.findall(m.group(1))
        return fill(m.group(1)) if all(n in facts for n in names) else ""

    text = _OPTIONAL.sub(optional, template)
    text = " ".join(_FACT.sub(lambda m: facts.get(m.group(1), "?"), text).split())
    return (text[:1].upper() + text[1:])[:MAX_REASON_LENGTH]  # a sentence: "Person in ..."


def reason_of(event: Event) -> str | None:
    """The reason of ``event`` in words, from its type's template (``None``: no words)."""
    words = event_words(event.type)
    if words is None:
        return None
    text = render(words.reason, reason_facts(event))
    members = (event.details or {}).get("members")
    if isinstance(members, int) and not isinstance(members, bool) and members > 1:
        text += f" ({members} events in one alert)"  # merged by the incident gate
    return text[:MAX_REASON_LENGTH]
