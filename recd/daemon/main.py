"""`recd` entry point: run once, check the configuration, or (later) run the daemon.

The only place besides `recctl` that configures logging, reads the environment and turns
errors into an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import sys
from collections.abc import Sequence
from pathlib import Path

from recd import __version__, log
from recd.adapters.systemd import Notifier, watchdog_interval
from recd.config.load import DEFAULT_CONFIG, Config, config_warnings, load
from recd.core.text import plural
from recd.daemon.build import system_clock
from recd.daemon.dropin import drop_in
from recd.daemon.once import ClockConfirmation, release_breaker, run_once
from recd.errors import ConfigInvalid, ExitCode, RecdError, UsageError

logger = logging.getLogger("recd.daemon.main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recd",
        description="Keep call recordings exactly as long as each customer's licence allows, "
        "then erase them for good.",
        epilog="Exit status: 0 ok, 1 failed, 2 usage, 3 not allowed in this state, "
        "4 some erasures failed, 74 audit log cannot be written, 78 invalid configuration.",
    )
    parser.add_argument("--version", action="version", version=f"recd {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"recd.toml to use; licence files are read from licences.d beside it "
        f"(default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="scan every source, erase what is due, print one line per licence and exit "
        "(without it, recd runs as a daemon in the foreground until SIGTERM)",
    )
    parser.add_argument(
        "--confirm-clock",
        action="store_true",
        help="with --once: trust the wall clock even if it is more than safety.max_clock_gap "
        "ahead of the last audit entry and the newest recording (audited as clock.confirmed)",
    )
    parser.add_argument(
        "--acknowledge-log",
        metavar="REASON",
        help="with --once: erase although the audit log does not verify or does not match the "
        "catalogue (checked first with `recctl audit verify`); audited as audit.acknowledged "
        "with REASON",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser(
        "check-config",
        help="validate the configuration and exit (0 valid, 78 invalid)",
        description="Validate recd.toml and licences.d/*.toml; print every problem. When "
        "valid, print the systemd drop-in (ReadWritePaths=) the directory sources' roots need "
        "under the shipped unit.",
    )
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH")
    check.add_argument(
        "--drop-in",
        action="store_true",
        help="print only the systemd drop-in that lets the unit write the directory sources' "
        "roots (ReadWritePaths=), e.g. for `systemctl edit recd`",
    )
    release = sub.add_parser(
        "release-breaker",
        help="let the next run erase a licence held back by the mass-deletion breaker",
        description="Release a tripped mass-deletion breaker: the next `recd --once` erases "
        "the licence's due recordings, then the breaker re-arms. Audited with your user name.",
    )
    release.add_argument("licence", metavar="LICENCE", help="the licence id the breaker stopped")
    release.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="PATH")
    return parser


def cmd_check_config(config_path: Path, *, only_drop_in: bool = False) -> ExitCode:
    """Validate; print the warnings, the ok line, then the systemd drop-in the directory
    sources' roots need under the shipped unit (``only_drop_in``: the drop-in alone)."""
    config = load(config_path)
    lines = drop_in(config)
    if not only_drop_in:
        for warning in config_warnings(config):
            print(f"warning: {warning}")
        print(
            f"{config_path}: ok ({plural(len(config.sources), 'source')}, "
            f"{plural(len(config.licences), 'licence')}, "
            f"mode {config.daemon.mode})"
        )
        print(f"node: {config.daemon.node}")
        print(f"catalogue: {_catalogue(config)}")
        if lines:
            print("# the unit may write only what ReadWritePaths= lists: add the roots with")
    for line in lines:
        print(line)
    return ExitCode.OK


def _catalogue(config: Config) -> str:
    """Where the catalogue is, for check-config: never a password (the loader refuses one)."""
    url = config.catalogue.url
    if url is None:
        return f"SQLite, {config.daemon.state_dir / 'catalog.db'}"
    return f"PostgreSQL, {url}"


def cmd_once(
    config_path: Path, *, confirm_clock: bool = False, acknowledge_log: str | None = None
) -> ExitCode:
    config = load(config_path.absolute())  # the audit log names it: say which file exactly
    for warning in config_warnings(config):
        logger.warning("%s", warning)
    user = _user_name(os.getuid())
    confirm = ClockConfirmation(user) if confirm_clock else None
    acknowledge = None
    if acknowledge_log is not None:
        if not acknowledge_log.strip():
            raise UsageError("--acknowledge-log: give the reason (what you checked)")
        acknowledge = ClockConfirmation(user, acknowledge_log)
    return run_once(config, system_clock(), sys.stdout, confirm, acknowledge)


def cmd_daemon(config_path: Path) -> ExitCode:
    """Run in the foreground until SIGTERM (systemd `Type=notify`)."""
    # Imported here: the loop, admin socket and metrics are a third of `recd --once`'s start.
    from recd.daemon.loop import Daemon  # noqa: PLC0415

    config_path = config_path.absolute()  # logged, audited and read again on reload
    config = load(config_path)
    for warning in config_warnings(config):
        logger.warning("%s", warning)
    env = os.environ
    daemon = Daemon(
        config,
        system_clock(),
        Notifier(env.get("NOTIFY_SOCKET")),
        watchdog=watchdog_interval(env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID"), os.getpid()),
    )
    daemon.install_signals()
    logger.info("recd %s starting with %s", __version__, config_path)
    return daemon.run()


def cmd_release_breaker(config_path: Path, licence: str) -> ExitCode:
    config = load(config_path)
    actor = _user_name(os.getuid())
    return release_breaker(config, system_clock(), licence, actor)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def dispatch(args: argparse.Namespace) -> ExitCode:
    if args.command == "check-config":
        return cmd_check_config(args.config, only_drop_in=args.drop_in)
    if args.command == "release-breaker":
        return cmd_release_breaker(args.config, args.licence)
    if args.once:
        return cmd_once(
            args.config, confirm_clock=args.confirm_clock, acknowledge_log=args.acknowledge_log
        )
    if args.acknowledge_log is not None:
        raise UsageError(
            "--acknowledge-log goes with --once (the daemon: `recctl audit acknowledge`)"
        )
    if args.confirm_clock:
        raise UsageError("--confirm-clock goes with --once (the daemon: `recctl clock confirm`)")
    return cmd_daemon(args.config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = log.parse_level(os.environ.get("RECD_LOG", "INFO"))
        log.configure(journald=log.stderr_is_journal(), level=level)
        return dispatch(args)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(f"recd: {problem}", file=sys.stderr)
        return exc.exit_code
    except RecdError as exc:
        print(f"recd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # pragma: no cover (interactive)
        return ExitCode.FAILED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
