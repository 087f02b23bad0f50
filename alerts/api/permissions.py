"""Who may do what: roles, their permissions, the principal of a request, camera groups.

Every route declares its decision with a dependency (``alerts.api.auth``):
``needs(Permission.X)`` (the request's principal must hold X) or ``OPEN`` (no one needs to
sign in: health, readiness, metrics, the sign-in page, static assets).  A route with
neither fails the test that walks every route of the app against every role
(``tests/unit/test_api_access.py``).

| permission | operator | supervisor | admin |
|---|---|---|---|
| read and act on alerts of their groups; false alarms by region or rule | ✓ | ✓ | ✓ |
| search the tracks of their groups' cameras (forensic search; audited) | ✓ | ✓ | ✓ |
| act on alerts others own or escalated; camera-wide suppressions; lift any suppression | | ✓ | ✓ |
| the audit trail, disposition figures, the pipeline's detailed status | | ✓ | ✓ |
| evidence unmasked (the original snapshot and clip, people not blurred; audited) | | ✓ | ✓ |
| users, machine tokens, the rule set | | | ✓ |

Camera groups: a user (or token) works on the cameras of its groups; admins, and the
installation's API key, on every camera.  An alert outside a principal's groups does not
exist for it (404).

Evidence (snapshots, clips) is served masked, every person blurred; the original only to
a role holding ``VIEW_UNMASKED``, and each such view is written to the audit trail
(``alerts.api.routes.evidence``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from alerts.store import ActorKind, Role

DEFAULT_GROUP = "default"
"""The group of a camera whose config names none, and of a user created without one."""


class Permission(enum.StrEnum):
    """What a route needs."""

    ALERTS_READ = "alerts.read"
    ALERTS_ACT = "alerts.act"
    ALERTS_ACT_ANY = "alerts.act_any"
    SUPPRESSIONS_READ = "suppressions.read"
    SUPPRESSIONS_MANAGE = "suppressions.manage"
    RULES_READ = "rules.read"
    RULES_WRITE = "rules.write"
    AUDIT_READ = "audit.read"
    STATS_READ = "stats.read"
    STATUS_READ = "status.read"
    VIEW_UNMASKED = "evidence.unmasked"
    """See evidence unmasked: the original snapshot and clip, people not blurred."""
    USERS_MANAGE = "users.manage"
    TOKENS_MANAGE = "tokens.manage"
    SEARCH = "tracks.search"
    """Search the tracks of the cameras of one's groups (forensic search; audited)."""
    CAMERAS_MANAGE = "cameras.manage"
    """Add, change and remove the fleet's cameras (admins)."""
    SIGNED_IN = "signed_in"


_OPERATOR = frozenset(
    {
        Permission.SIGNED_IN,
        Permission.ALERTS_READ,
        Permission.ALERTS_ACT,
        Permission.SUPPRESSIONS_READ,
        Permission.RULES_READ,
        Permission.SEARCH,
    }
)
_SUPERVISOR = _OPERATOR | {
    Permission.ALERTS_ACT_ANY,
    Permission.SUPPRESSIONS_MANAGE,
    Permission.AUDIT_READ,
    Permission.STATS_READ,
    Permission.STATUS_READ,
    Permission.VIEW_UNMASKED,
}
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    "operator": _OPERATOR,
    "supervisor": frozenset(_SUPERVISOR),
    "admin": frozenset(Permission),
}


def roles_with(permission: Permission) -> list[Role]:
    """The roles that hold ``permission``, least powerful first (for answers that say who
    may do something)."""
    return [role for role, held in ROLE_PERMISSIONS.items() if permission in held]


@dataclass(frozen=True)
class Principal:
    """Who a request comes from.

    Attributes:
        name: User name, token id, or ``"api-key"``.
        kind: ``user`` (a session), ``token`` or ``api_key``.
        role: What it may do.
        groups: Camera groups it works on; ``None``: every camera.
        session_hash: The session's id hash (signed-in users).
    """

    name: str
    kind: ActorKind
    role: Role
    groups: frozenset[str] | None
    session_hash: str | None = None

    def can(self, permission: Permission) -> bool:
        """Whether its role holds ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]


def principal_groups(role: Role, groups: list[str]) -> frozenset[str] | None:
    """The groups a user or token works on: every camera for admins."""
    return None if role == "admin" else frozenset(groups or [DEFAULT_GROUP])


class CameraGroups:
    """Which groups each camera is in (``cameras[].groups`` of the config, default
    ``[default]``).

    A camera the config does not name (an alert from another site's worker, a camera
    removed since) is in no group: only principals of every camera (admins, the API key)
    see its alerts.
    """

    def __init__(self, groups: Mapping[str, list[str]] | None = None) -> None:
        self._groups = {cam: frozenset(g or [DEFAULT_GROUP]) for cam, g in (groups or {}).items()}

    def of(self, camera_id: str) -> frozenset[str]:
        """The groups of ``camera_id`` (empty when the config does not name it)."""
        return self._groups.get(camera_id, frozenset())

    def visible(self, who: Principal, camera_id: str) -> bool:
        """Whether ``who`` works on ``camera_id``."""
        return who.groups is None or bool(who.groups & self.of(camera_id))

    def configured(self) -> dict[str, frozenset[str]]:
        """Every camera the config names, with its groups."""
        return dict(self._groups)

    def update(self, groups: Mapping[str, list[str]]) -> None:
        """Replace every camera's groups (a fleet's cameras change while the API runs)."""
        self._groups = {cam: frozenset(g or [DEFAULT_GROUP]) for cam, g in groups.items()}

    def cameras_of(self, who: Principal) -> frozenset[str] | None:
        """The cameras ``who`` works on (``None``: every camera)."""
        if who.groups is None:
            return None
        return frozenset(cam for cam, g in self._groups.items() if g & who.groups)


class Need:
    """The dependency of a route that needs ``permission`` (see ``needs``)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __repr__(self) -> str:
        return f"Need({self.permission.value})"


def open_access() -> None:
    """The dependency of a route anyone may use, signed in or not (see ``OPEN``)."""
