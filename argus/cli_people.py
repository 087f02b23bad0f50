"""``argus users`` and ``argus tokens``: people and machine tokens, from the command line.

The same things the admin API does (``alerts/api/routes/people.py``), with the same checks
and audit entries, for the machine's administrator: no API key or sign-in needed, the
store is opened directly.  Which store: ``--config FILE``'s storage section (SQLite's
``storage.sqlite`` or ``storage.postgres``), else ``$ARGUS_HOME/alerts.db`` (as
``argus serve`` and ``argus run --serve`` use); never the evidence store.

Every change writes an audit entry by actor ``cli`` (kind ``system``), with the action
the API names it (``user.create``, ``user.update``, ``user.password``, ``token.create``,
``token.revoke``) and, when known, the operating-system account that ran the command.

Passwords are read from stdin (``--password-stdin``: one line; from a terminal, without
echo) and never printed, nor their hash.  ``argus tokens create`` prints the token, once,
alone on stdout (``TOKEN=$(argus tokens create ...)``); everything else goes to stderr.

Exit codes: 0 done; 2 bad input (unknown user or token, user exists, weak password, a bad
role, group or name, an unreadable config or store), with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argus.logs import setup_logging
from argus.paths import argus_home

if TYPE_CHECKING:  # imported when a command runs: `argus --help` stays quick
    from alerts.api.security import Passwords
    from alerts.store import Role, SqlAlertStore, Token, User

EXIT_OK, EXIT_BAD_INPUT = 0, 2
"""As in ``argus.cli``: 0 success, 2 could not be done as asked."""
ACTOR = "cli"
TOKEN_ID_PATTERN = r"^[a-z2-9]{12}$"
MAX_TOKEN_DAYS = 5 * 365
"""A token lives at most 5 years (as ``POST /api/v1/tokens`` allows)."""
TOKEN_NAME_MAX = 100

ROLE_NAMES = ("operator", "supervisor", "admin")
"""``alerts.store.ROLES``, for the help text."""


def make_passwords() -> Passwords:
    """How the commands hash passwords (tests swap in cheap Argon2 parameters)."""
    from alerts.api.security import Passwords

    return Passwords()


class BadInputError(ValueError):
    """What the user asked cannot be done: a one-line reason, exit code 2."""


# ---------------------------------------------------------------------------- helpers


def _store(args: argparse.Namespace) -> SqlAlertStore:
    """The alert store the API serves (``open_store`` without the evidence): SQLite or
    PostgreSQL, as ``--config``'s storage section says."""
    from argus.app import open_alert_store
    from argus.config import ConfigError, StorageConfig, load_config

    storage = StorageConfig()
    if args.config:
        try:
            storage = load_config(Path(args.config)).storage
        except ConfigError as e:
            raise BadInputError(str(e)) from e
    return open_alert_store(storage, argus_home())


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name, no passwd entry
        return None


def _audit(
    store: SqlAlertStore,
    action: str,
    target_kind: str,
    target_id: str,
    detail: dict[str, str | list[str]] | None = None,
) -> None:
    """Append the audit entry of the CLI doing ``action`` now."""
    from alerts.store import AuditEntry

    facts: dict[str, Any] = dict(detail or {})
    who = _os_user()
    if who:
        facts["os_user"] = who[:200]
    store.append_audit(
        AuditEntry(
            at=datetime.now(UTC),
            actor=ACTOR,
            actor_kind="system",
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            detail=facts,
        )
    )


def _user_name(name: str) -> str:
    from alerts.api.people_models import USER_NAME_PATTERN

    if not re.fullmatch(USER_NAME_PATTERN, name):
        raise BadInputError(
            f"bad user name {name!r}: letters, digits and _ . @ -, 1-64 characters, "
            "starting with a letter or digit"
        )
    return name


def _role(role: str) -> Role:
    from alerts.store import ROLES

    if role not in ROLES:
        raise BadInputError(f"bad role {role!r}: one of {', '.join(ROLES)}")
    return role


def _groups(text: str | None) -> list[str]:
    """``a,b`` as a list of camera group names (``None``: ``[default]``)."""
    from alerts.api.people_models import GROUP_PATTERN, MAX_GROUPS

    if text is None:
        return ["default"]
    groups = list(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    if not groups:
        raise BadInputError("--groups needs at least one group name, e.g. --groups north,south")
    if len(groups) > MAX_GROUPS:
        raise BadInputError(f"--groups: at most {MAX_GROUPS} groups")
    for g in groups:
        if not re.fullmatch(GROUP_PATTERN, g):
            raise BadInputError(
                f"bad group name {g!r}: letters, digits and _ . -, 1-64 characters, "
                "starting with a letter or digit"
            )
    return groups


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin (without echo from a terminal)."""
    from alerts.api.security import password_problem

    stdin = sys.stdin
    if stdin is None:
        raise BadInputError("no stdin to read the password from")
    interactive = stdin.isatty()
    if not args.password_stdin and not interactive:
        raise BadInputError("give the password on stdin with --password-stdin")
    if interactive:
        password = getpass.getpass("Password: ", stream=sys.stderr)
        if not args.password_stdin and getpass.getpass("Again: ", stream=sys.stderr) != password:
            raise BadInputError("the passwords differ")
    else:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise BadInputError("no password on stdin")
    problem = password_problem(password)
    if problem:
        raise BadInputError(f"password refused: {problem}")
    return password


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    head = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    return "\n".join(line.rstrip() for line in [head, *lines])


def _json(items: Sequence[User | Token]) -> str:
    return json.dumps([item.model_dump(mode="json") for item in items], indent=2)


def _say(text: str) -> None:
    print(f"argus: {text}", file=sys.stderr)


# ---------------------------------------------------------------------------- users


def _users_add(store: SqlAlertStore, args: argparse.Namespace) -> int:
    from alerts.store import UserExistsError

    name = _user_name(args.name)
    role = _role(args.role)
    groups = _groups(args.groups)
    if store.get_user(name) is not None:  # before asking for and hashing a password
        raise BadInputError(f"user {name!r} exists already")
    password = _read_password(args)
    try:
        user = store.add_user(
            name,
            role=role,
            groups=groups,
            password_hash=make_passwords().hash(password),
            now=time.time(),
        )
    except UserExistsError as e:
        raise BadInputError(str(e)) from e
    _audit(store, "user.create", "user", user.name, {"role": user.role, "groups": user.groups})
    _say(f"user {user.name!r} added: {user.role} of {', '.join(user.groups)}")
    return EXIT_OK


def _users_list(store: SqlAlertStore, args: argparse.Namespace) -> int:
    users = store.list_users()
    if args.json:
        print(_json(users))
        return EXIT_OK
    rows = [
        [u.name, u.role, ",".join(u.groups), "yes" if u.disabled else "no", _when(u.created_at)]
        for u in users
    ]
    print(_table(["NAME", "ROLE", "GROUPS", "DISABLED", "CREATED"], rows))
    return EXIT_OK


def _update(
    store: SqlAlertStore,
    name: str,
    *,
    role: Role | None = None,
    groups: list[str] | None = None,
    disabled: bool | None = None,
) -> User:
    """``PATCH /users/{name}``: change what is given, audit it as ``user.update``."""
    from alerts.store import UserNotFoundError

    try:
        user = store.update_user(
            _user_name(name), now=time.time(), role=role, groups=groups, disabled=disabled
        )
    except UserNotFoundError as e:
        raise BadInputError(f"no user {name!r}") from e
    changed: dict[str, object] = {"role": role, "groups": groups, "disabled": disabled}
    detail = {
        k: [str(x) for x in v] if isinstance(v, list) else str(v)
        for k, v in changed.items()
        if v is not None
    }
    _audit(store, "user.update", "user", user.name, detail)
    return user


def _users_disable(store: SqlAlertStore, args: argparse.Namespace) -> int:
    user = _update(store, args.name, disabled=True)
    _say(f"user {user.name!r} disabled (their sessions ended)")
    return EXIT_OK


def _users_enable(store: SqlAlertStore, args: argparse.Namespace) -> int:
    user = _update(store, args.name, disabled=False)
    _say(f"user {user.name!r} enabled")
    return EXIT_OK


def _users_set(store: SqlAlertStore, args: argparse.Namespace) -> int:
    if args.role is None and args.groups is None:
        raise BadInputError("nothing to change: give --role and/or --groups")
    role = None if args.role is None else _role(args.role)
    groups = None if args.groups is None else _groups(args.groups)
    user = _update(store, args.name, role=role, groups=groups)
    _say(f"user {user.name!r}: {user.role} of {', '.join(user.groups)}")
    return EXIT_OK


def _users_reset_password(store: SqlAlertStore, args: argparse.Namespace) -> int:
    from alerts.store import UserNotFoundError

    name = _user_name(args.name)
    if store.get_user(name) is None:  # before asking for a password
        raise BadInputError(f"no user {name!r}")
    password = _read_password(args)
    try:
        user = store.update_user(
            name, now=time.time(), password_hash=make_passwords().hash(password)
        )
    except UserNotFoundError as e:
        raise BadInputError(f"no user {name!r}") from e
    _audit(store, "user.password", "user", user.name, {"by": ACTOR})
    _say(f"password of {user.name!r} set (their sessions ended)")
    return EXIT_OK


# ---------------------------------------------------------------------------- tokens


def _tokens_create(store: SqlAlertStore, args: argparse.Namespace) -> int:
    from alerts.api.models import ACTOR_PATTERN
    from alerts.api.security import digest, new_token
    from alerts.store import Token

    name = args.name
    if not (0 < len(name) <= TOKEN_NAME_MAX and re.fullmatch(ACTOR_PATTERN, name)):
        raise BadInputError(
            f"bad token name {name!r}: 1-{TOKEN_NAME_MAX} characters, no control characters"
        )
    role = _role(args.role)
    groups = _groups(args.groups)
    days = args.expires_in_days
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise BadInputError(f"--expires-in-days must be 1 to {MAX_TOKEN_DAYS}, got {days}")
    token_id, secret, token = new_token()
    now = datetime.now(UTC)
    stored = store.create_token(
        Token(
            token_id=token_id,
            name=name,
            role=role,
            groups=groups,
            created_by=ACTOR,
            created_at=now,
            expires_at=None if days is None else now + timedelta(days=days),
        ),
        secret_hash=digest(secret),
    )
    _audit(store, "token.create", "token", token_id, {"role": role, "groups": groups})
    print(token, flush=True)
    until = "until revoked" if stored.expires_at is None else f"until {_when(stored.expires_at)}"
    _say(
        f"token {token_id} ({stored.name!r}: {stored.role} of {', '.join(stored.groups)}) "
        f"created, valid {until}; it is shown this once, send it as "
        "'Authorization: Bearer <token>'"
    )
    return EXIT_OK


def _tokens_list(store: SqlAlertStore, args: argparse.Namespace) -> int:
    tokens = store.list_tokens()
    if args.json:
        print(_json(tokens))
        return EXIT_OK
    rows = [
        [
            t.token_id,
            t.name,
            t.role,
            ",".join(t.groups),
            t.created_by,
            _when(t.created_at),
            _when(t.expires_at),
            _when(t.revoked_at),
            _when(t.last_used_at),
        ]
        for t in tokens
    ]
    header = ["ID", "NAME", "ROLE", "GROUPS", "BY", "CREATED", "EXPIRES", "REVOKED", "LAST USED"]
    print(_table(header, rows))
    return EXIT_OK


def _tokens_revoke(store: SqlAlertStore, args: argparse.Namespace) -> int:
    token_id = args.token_id
    if not re.fullmatch(TOKEN_ID_PATTERN, token_id):
        raise BadInputError(
            f"bad token id {token_id!r}: the 12 characters after 'argus_' (argus tokens list)"
        )
    found = store.get_token(token_id)
    if found is None:
        raise BadInputError(f"no token {token_id!r}")
    if found[0].revoked_at is not None:
        _say(f"token {token_id} was revoked already, at {_when(found[0].revoked_at)}")
        return EXIT_OK
    if store.revoke_token(token_id, now=time.time()) is None:
        raise BadInputError(f"no token {token_id!r}")
    _audit(store, "token.revoke", "token", token_id)
    _say(f"token {token_id} revoked: it is refused from now on")
    return EXIT_OK


# ---------------------------------------------------------------------------- wiring

Command = Callable[["SqlAlertStore", argparse.Namespace], int]


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        setup_logging(args.log_level or "WARNING", args.log_format or "text")
        from alerts.store import AlertStoreError

        store = None
        try:
            store = _store(args)
            return command(store, args)
        except BadInputError as e:
            _say(str(e))
        except (AlertStoreError, OSError) as e:
            _say(f"cannot use the alert store: {e}")
        finally:
            if store is not None:
                store.close()
        return EXIT_BAD_INPUT

    return run


def add_people_commands(sub: Any) -> None:
    """Add ``users`` and ``tokens`` to the ``argus`` subcommands (``sub``: the
    ``add_subparsers`` result of ``argus.cli.build_parser``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="config whose storage section (sqlite or postgres) to use "
        "(default: $ARGUS_HOME/alerts.db)",
    )
    roles = "{" + ",".join(ROLE_NAMES) + "}"

    u = sub.add_parser("users", help="add, list, disable and change users")
    usub = u.add_subparsers(dest="users_cmd", required=True)
    ua = usub.add_parser("add", parents=[common], help="add a user")
    ua.add_argument("name", help="user name (letters, digits, _ . @ -)")
    ua.add_argument("--role", required=True, metavar=roles, help="what they may do")
    ua.add_argument("--groups", help="camera groups a,b (default: default)")
    ua.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (one line)"
    )
    ua.set_defaults(fn=_run(_users_add))
    ul = usub.add_parser("list", parents=[common], help="list users")
    ul.add_argument("--json", action="store_true", help="JSON, for scripts")
    ul.set_defaults(fn=_run(_users_list))
    for verb, fn, what in (
        ("disable", _users_disable, "stop a user signing in (ends their sessions)"),
        ("enable", _users_enable, "let a disabled user sign in again"),
    ):
        p = usub.add_parser(verb, parents=[common], help=what)
        p.add_argument("name")
        p.set_defaults(fn=_run(fn))
    ur = usub.add_parser(
        "reset-password", parents=[common], help="set a user's password (ends their sessions)"
    )
    ur.add_argument("name")
    ur.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (one line)"
    )
    ur.set_defaults(fn=_run(_users_reset_password))
    us = usub.add_parser("set", parents=[common], help="change a user's role or groups")
    us.add_argument("name")
    us.add_argument("--role", metavar=roles)
    us.add_argument("--groups", help="camera groups a,b (replace the current ones)")
    us.set_defaults(fn=_run(_users_set))

    t = sub.add_parser("tokens", help="machine tokens for integrations")
    tsub = t.add_subparsers(dest="tokens_cmd", required=True)
    tc = tsub.add_parser(
        "create", parents=[common], help="create a token; prints it once, alone on stdout"
    )
    tc.add_argument("name", help="what it is for, e.g. vms-bridge")
    tc.add_argument("--role", required=True, metavar=roles)
    tc.add_argument("--groups", help="camera groups a,b (default: default)")
    tc.add_argument("--expires-in-days", type=int, help="lifetime (default: until revoked)")
    tc.set_defaults(fn=_run(_tokens_create))
    tl = tsub.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    tl.add_argument("--json", action="store_true", help="JSON, for scripts")
    tl.set_defaults(fn=_run(_tokens_list))
    tr = tsub.add_parser("revoke", parents=[common], help="revoke a token")
    tr.add_argument("token_id", help="its id (argus tokens list)")
    tr.set_defaults(fn=_run(_tokens_revoke))
