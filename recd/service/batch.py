"""One audited batch of erasures: the steps every erase goes through, for sweeps and requests.

1. The intents are recorded in the catalogue, each only if its recording is still present and
   not held (the last check: a hold placed after the plan wins; such plans are handed back),
   and, in a catalogue shared by several nodes, claimed by this one and given no other intent.
2. One ``erase.intent`` entry for the batch is appended to the audit log, listing every
   recording with its intent id and plan details (durable before anything is touched).
3. The files are erased, then their directories flushed.
4. ``erase.done`` / ``erase.failed`` are appended, one per recording (each with its intent id),
   and only then is the catalogue told.

On a shared catalogue steps 1 and 2 commit as one transaction, and so do the entries of step 4
and the intents they resolve (``recd.ports.together``); the erase of step 3 runs between the
two, in no transaction (the chain's lock, held to each commit, would stop every host's appends
for as long as it took).

A crash anywhere leaves intents that ``recovery`` settles on the next start.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recd.core.audit import AuditDraft, AuditEntry
from recd.core.erasure import Decision
from recd.core.intents import INTENT, batch_details
from recd.core.model import ERASE_PREFIX, EraseMethod, Recording
from recd.errors import os_reason
from recd.ports.eraser import EraseError, EraseJob, EraseOutcome, Eraser, PreparedErase
from recd.ports.records import Intent
from recd.ports.sweeping import SweepCatalogue
from recd.service import EraseUseCase

T = TypeVar("T")


@dataclass(slots=True)
class Plan:
    """One recording opened, checked and decided, with the audit details of its erase."""

    rec: Recording
    label: str  # the licence, for reports
    eraser: Eraser
    prepared: PreparedErase
    decision: Decision
    details: dict[str, Any]
    intent_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    temp_name: str = field(default_factory=lambda: ERASE_PREFIX + secrets.token_hex(12))


@dataclass(frozen=True, slots=True)
class Done:
    plan: Plan
    entry: AuditEntry  # erase.done


@dataclass(frozen=True, slots=True)
class Failed:
    plan: Plan
    why: str
    entry: AuditEntry  # erase.failed


@dataclass(slots=True)
class BatchResult:
    done: list[Done] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    kept: list[Plan] = field(default_factory=list)  # held (or gone) since the plan: untouched


def method_details(method: str, effective: bool, why: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"method": method, "effective": effective}
    if not effective and why:
        out["ineffective_reason"] = why
    return out


#: What a plan claims about an erase that did not happen: a failed erase claims none of it.
PLANNED_ONLY = ("effective", "ineffective_reason")


def failed_details(details: Mapping[str, Any], why: str) -> dict[str, Any]:
    """``erase.failed`` details: the plan's, without its claims (``effective`` and
    ``ineffective_reason``, which only an ``erase.done`` may make), and the error. ``method``
    stays: it names the erase that was tried."""
    out = {k: v for k, v in details.items() if k not in PLANNED_ONLY}
    out["error"] = why
    return out


def run_batch(uc: EraseUseCase[SweepCatalogue], plans: list[Plan]) -> BatchResult:
    """Erase ``plans`` (their files are closed afterwards, whatever happens)."""
    result = BatchResult()
    started = uc.clock.now()
    offset = uc.audit.end_offset()
    try:
        with uc.catalogue.together():  # the intents and their erase.intent, or neither
            recorded = uc.catalogue.add_intents(
                Intent(p.intent_id, p.rec.id, offset, p.temp_name, p.details, started)
                for p in plans
            )
            if recorded:
                chosen = [p for p in plans if p.intent_id in recorded]
                uc.audit.append([batch_intent(chosen)], started)
    except BaseException:
        _close(plans)
        raise
    result.kept = [p for p in plans if p.intent_id not in recorded]
    _close(result.kept)
    plans = [p for p in plans if p.intent_id in recorded]
    if not plans:
        return result
    outcomes = _erase_all(uc, plans)  # committed first: nothing is erased inside a transaction
    sync_failure = _sync_all(e for e, _ in by_eraser(plans, lambda p: p.eraser))
    finished = uc.clock.now()
    drafts = [
        _outcome_draft(plan, outcome, sync_failure)
        for plan, outcome in zip(plans, outcomes, strict=True)
    ]
    with uc.catalogue.together():  # the outcomes and the intents they resolve, or neither
        entries = uc.audit.append(drafts, finished)
        done: list[Done] = []
        failed: list[Failed] = []
        for plan, entry in zip(plans, entries, strict=True):
            if entry.action == "erase.done":
                done.append(Done(plan, entry))
            else:
                failed.append(Failed(plan, str(entry.details["error"]), entry))
        uc.catalogue.resolve_intents(
            [(d.plan.intent_id, finished) for d in done], [f.plan.intent_id for f in failed]
        )
    result.done, result.failed = done, failed
    return result


def batch_intent(plans: list[Plan]) -> AuditDraft:
    """The one ``erase.intent`` entry of a batch (``recd.core.intents``)."""
    batch = uuid.uuid4().hex
    details = batch_details(batch, [(p.rec.id, p.intent_id, p.details) for p in plans])
    return AuditDraft(INTENT, batch, details)


def _outcome_draft(plan: Plan, outcome: EraseOutcome | str, sync_failure: str | None) -> AuditDraft:
    """``erase.done`` with what the erase did, or ``erase.failed`` with why (a failed directory
    flush fails every erase of the batch)."""
    details: dict[str, Any] = {"intent": plan.intent_id, **plan.details}
    if isinstance(outcome, str) or sync_failure:
        why = outcome if isinstance(outcome, str) else str(sync_failure)
        return AuditDraft("erase.failed", plan.rec.id, failed_details(details, why))
    details |= method_details(outcome.method, outcome.effective, outcome.ineffective_reason)
    details["bytes_overwritten"] = outcome.bytes_overwritten
    details |= outcome.details
    return AuditDraft("erase.done", plan.rec.id, details)


def by_eraser(items: Iterable[T], eraser: Callable[[T], Eraser]) -> list[tuple[Eraser, list[T]]]:
    """``items`` grouped by their eraser, in the order each eraser first appears."""
    groups: dict[int, tuple[Eraser, list[T]]] = {}
    for item in items:
        e = eraser(item)
        groups.setdefault(id(e), (e, []))[1].append(item)
    return list(groups.values())


def _close(plans: Iterable[Plan]) -> None:
    for plan in plans:
        plan.prepared.close()


def _erase_all(uc: EraseUseCase[SweepCatalogue], plans: list[Plan]) -> list[EraseOutcome | str]:
    """Each plan's outcome, or why it failed; erasers take their plans as one batch (an S3
    eraser deletes up to 1,000 versions per request). Every plan is closed afterwards."""
    outcomes: dict[int, EraseOutcome | str] = {}
    try:
        for eraser, group in by_eraser(enumerate(plans), lambda pair: pair[1].eraser):
            indexes = [n for n, _ in group]
            jobs = [_job(plan) for _, plan in group]
            try:
                results = eraser.erase_many(
                    jobs, pattern=uc.config.erase.pattern, verify=uc.config.erase.verify
                )
            except OSError as exc:  # the whole batch of this eraser did not happen
                why = os_reason(exc)
                results = [EraseError(why) for _ in jobs]
            for n, result in zip(indexes, results, strict=True):
                if isinstance(result, EraseError):
                    _count(uc, plans[n], result.codes)
                    outcomes[n] = result.reason
                else:
                    _count(uc, plans[n], result.details.get("retried_errors", {}))
                    outcomes[n] = result
    finally:
        _close(plans)
    return [outcomes[n] for n in range(len(plans))]


def _count(uc: EraseUseCase[SweepCatalogue], plan: Plan, codes: Mapping[str, int]) -> None:
    """S3 error replies behind one erase (failed, or retried and then done), for metrics."""
    for code, times in codes.items():
        for _ in range(times):
            uc.telemetry.object_error(plan.rec.source, code)


def _job(plan: Plan) -> EraseJob:
    return EraseJob(plan.prepared, plan.decision, plan.temp_name)


def _sync_all(erasers: Iterable[Eraser]) -> str | None:
    failure = None
    for eraser in erasers:
        try:
            eraser.sync()
        except OSError as exc:
            failure = f"directory flush failed: {os_reason(exc)}"
    return failure


def how(details: Mapping[str, Any]) -> str:
    """``overwrite``, or why the overwrite was not effective, for log lines."""
    if details["method"] == EraseMethod.S3_DELETE:
        n = details.get("deleted_versions", 0)
        return f"s3-delete, {n} version{'s' if n != 1 else ''} deleted and confirmed gone"
    if details["effective"]:
        return str(details["method"])
    return f"{details['method']}, overwrite not effective: {details.get('ineffective_reason')}"
