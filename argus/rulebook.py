"""Rules from configuration: one place that turns rule configs into rule objects.

Used at start (``argus.app.build_pipeline``) and for every rule set changed at run time
(API → control channel → worker), so both paths build and validate the same way.  A
camera's ``RuleBook`` remembers what it built: a rule whose config did not change keeps
its object, and with it its state (open events, dwell timers), across a reload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from argus.config import ArgusConfig, CameraConfig, ConfigError, RuleConfig, parse_config
from selector.ground import CameraGround, GroundEstimator
from selector.incidents import RulePolicy
from selector.lines import Line
from selector.rules.base import Rule, RuleError
from selector.rules.registry import BuildContext, RuleConfigError, rule_type
from selector.schedule import Schedule, Window
from selector.zones import PolygonZone


def class_ids(
    names: Sequence[str], class_names: Sequence[str], where: str, source: str
) -> set[int]:
    """Map class names to the model's class ids; unknown names are a config error."""
    index = {n: i for i, n in enumerate(class_names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ConfigError(
            source,
            [f"{where}: unknown class {unknown} for this model (e.g. {list(class_names[:5])}...)"],
        )
    return {index[n] for n in names}


def policy_of(cfg: RuleConfig, cam: CameraConfig) -> RulePolicy:
    """Arming, schedule and cooldown of a rule config."""
    windows = [Window.parse(w.start, w.end, w.days, w.weight) for w in cfg.schedule]
    return RulePolicy(
        enabled=cfg.enabled,
        schedule=Schedule(windows, cam.timezone),
        cooldown_s=cfg.cooldown_s,
        per_object=cfg.alert_per == "object",
    )


def build_rule(
    cfg: RuleConfig, cam: CameraConfig, names: Sequence[str], where: str, source: str
) -> Rule:
    """The rule object of one rule config on camera ``cam``, by its type's factory.

    Raises:
        ConfigError: Unknown class name, or the rule refuses a value (names ``where``).
    """
    kind = str(getattr(cfg, "type", ""))
    found = rule_type(kind)
    if found is None:
        raise ConfigError(source, [f"{where}: unsupported rule type {kind!r}"])
    ctx = BuildContext(
        camera_id=cam.id,
        zones={z.name: PolygonZone(z.name, z.polygon, z.weight) for z in cam.zones},
        lines={ln.name: Line(ln.name, ln.points) for ln in cam.lines},
        class_names=tuple(names),
        ground=cam.ground_model(),
    )
    try:
        return found.build(cfg, ctx)
    except RuleConfigError as e:
        at = f"{where}.{e.key}" if e.key else where
        raise ConfigError(source, [f"{at}: {e.problem}"]) from e
    except RuleError as e:
        raise ConfigError(source, [f"{where}: {e}"]) from e


def camera_ground(cam: CameraConfig, names: Sequence[str]) -> CameraGround:
    """The ground the camera's rules measure on: its calibration (``ground.points``), else
    an estimate learned from the people it sees (``ground.estimate``), else none."""
    calibrated = cam.ground_model()
    if not cam.ground.estimate:
        return CameraGround(cam.id, calibrated)
    people = [i for i, n in enumerate(names) if n == "person"]
    estimator = GroundEstimator(people, hfov_deg=cam.ground.hfov_deg)
    return CameraGround(cam.id, calibrated, estimator)


class RuleBook:
    """Builds one camera's rules and keeps them for reuse across reloads.

    Args:
        cam: The camera's config (zones, lines, time zone).
        names: The model's class names.
        source: Where the config came from (for messages).
    """

    def __init__(self, cam: CameraConfig, names: Sequence[str], source: str) -> None:
        self.cam = cam
        self.names = tuple(names)
        self.source = source
        self._built: dict[str, tuple[RuleConfig, Rule]] = {}

    def build(
        self, rules: Sequence[RuleConfig], offsets: Sequence[int] | None = None
    ) -> tuple[list[Rule], dict[str, RulePolicy]]:
        """Rule objects and policies for this camera's rules among ``rules``.

        A rule whose config equals the one built before under the same id is reused.
        ``offsets`` are the rules' indexes in the file (for messages).

        Raises:
            ConfigError: A rule cannot be built; nothing is changed then.
        """
        built: dict[str, tuple[RuleConfig, Rule]] = {}
        policies: dict[str, RulePolicy] = {}
        for n, cfg in enumerate(rules):
            if cfg.camera != self.cam.id:
                continue
            where = f"rules.{offsets[n] if offsets else n}"
            old = self._built.get(cfg.rule_id)
            rule = old[1] if old is not None and old[0] == cfg else None
            if rule is None:
                rule = build_rule(cfg, self.cam, self.names, where, self.source)
            built[cfg.rule_id] = (cfg, rule)
            policies[cfg.rule_id] = policy_of(cfg, self.cam)
        self._built = built
        return [r for _, r in built.values()], policies


def validate_rules(
    raw_rules: list[dict[str, Any]], cfg: ArgusConfig, names: Sequence[str] | None
) -> list[str]:
    """Problems of a rule set sent at run time, checked against ``cfg``'s cameras.

    Every rule is also built (with the model's class ``names`` when known), so a set
    this accepts is one every worker with the same cameras can apply.  Types are checked
    strictly (``"severity": "60"`` or ``true`` is a problem, not a coerced 60 or 1): what
    is stored and published is exactly what was validated.
    """
    data: dict[str, Any] = cfg.model_dump(mode="json")
    data["rules"] = raw_rules
    try:
        checked = parse_config(data, "rules", strict=True)
    except ConfigError as e:
        return [p for p in e.problems if p.startswith("rules") or p.startswith("<top>")] or list(
            e.problems
        )
    if names is None:
        return []
    problems: list[str] = []
    cams = {c.id: c for c in checked.cameras}
    for i, rule in enumerate(checked.rules):
        try:
            build_rule(rule, cams[rule.camera], names, f"rules.{i}", "rules")
        except ConfigError as e:
            problems.extend(e.problems)
    return problems


def rules_by_camera(rules: Sequence[RuleConfig]) -> Mapping[str, list[RuleConfig]]:
    """Rule configs grouped by camera id, in file order."""
    out: dict[str, list[RuleConfig]] = {}
    for r in rules:
        out.setdefault(r.camera, []).append(r)
    return out
