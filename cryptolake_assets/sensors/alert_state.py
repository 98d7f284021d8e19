"""The alert sensor's cursor: open problem episodes, event cursors, the digest day and the outbox.

An episode opens when a problem first appears and closes when it clears; only those two moments
produce a message, so a problem that persists for days is announced once. Alerts that could not be
delivered wait in the outbox and are retried on the next ticks (a bounded number of times).
"""

import datetime as dt
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptolake_assets.sensors.problems import IdWindow, Problem, Transition
from resources.alerting import Alert

STATE_KINDS = ("freshness", "stale_symbols")
MAX_LINES_PER_ALERT = 20
TITLES = {
    "freshness": "Freshness policy failing",
    "stale_symbols": "Stale symbols",
    "check": "Blocking check failed",
    "run": "Run failed",
    "closed_gold": "Closed day's gold older than its silver",
}


@dataclass
class AlertState:
    open: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {group, kind, line, fields, since}
    check_after: int | None = None
    run_failure_after: int | None = None
    run_success_after: int | None = None
    digest_day: str | None = None
    last_digest_at: float | None = None
    outbox: list[dict[str, Any]] = field(default_factory=list)  # {"alert": {...}, "attempts": n}
    # Per event cursor above ("check", "run_failure", "run_success"): the ids already reported above
    # it and the ticks' marks (problems.IdWindow: ids may commit out of order).
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "AlertState":
        return cls(**json.loads(cursor)) if cursor else cls()

    def window(self, name: str) -> IdWindow:
        """The ``IdWindow`` of event cursor ``name`` (``check``, ``run_failure``, ``run_success``)."""
        return IdWindow.load(getattr(self, f"{name}_after"), self.windows.get(name))

    def set_window(self, name: str, window: IdWindow) -> None:
        setattr(self, f"{name}_after", window.after)
        self.windows[name] = window.dump()

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass
class Changes:
    opened: list[Problem] = field(default_factory=list)
    closed: list[tuple[Problem, str]] = field(default_factory=list)  # (problem, since)


def apply_states(state: AlertState, current: list[Problem], now: dt.datetime) -> Changes:
    """Open/close the state-derived episodes against the problems seen this tick."""
    changes = Changes()
    current_by_key = {problem.key: problem for problem in current}
    for key, episode in list(state.open.items()):
        if episode["kind"] in STATE_KINDS and key not in current_by_key:
            del state.open[key]
            changes.closed.append((_problem_of(key, episode), episode["since"]))
    for problem in current:
        if problem.key not in state.open:
            state.open[problem.key] = _episode(problem, now)
            changes.opened.append(problem)
    return changes


def apply_transitions(state: AlertState, transitions: list[Transition], now: dt.datetime) -> Changes:
    """Replay event-driven transitions in order; an episode opened and closed within one tick is dropped."""
    opened: dict[str, Problem] = {}
    closed: dict[str, tuple[Problem, str]] = {}
    for transition in transitions:
        problem = transition.problem
        if transition.opened:
            if problem.key in state.open:
                continue  # still the same episode: no repeat
            state.open[problem.key] = _episode(problem, now)
            opened[problem.key] = problem
        elif problem.key in state.open:
            episode = state.open.pop(problem.key)
            if opened.pop(problem.key, None) is None:
                closed[problem.key] = (problem, episode["since"])  # the clearing event describes it
    return Changes(opened=list(opened.values()), closed=list(closed.values()))


def _episode(problem: Problem, now: dt.datetime) -> dict[str, Any]:
    return {
        "group": problem.group,
        "kind": problem.kind,
        "line": problem.line,
        "fields": dict(problem.fields),
        "since": now.isoformat(),
    }


def _problem_of(key: str, episode: dict[str, Any]) -> Problem:
    return Problem(
        key=key,
        group=episode["group"],
        kind=episode["kind"],
        line=episode["line"],
        fields=dict(episode.get("fields") or {}),
    )


def alerts_for(changes: Changes, now: dt.datetime) -> list[Alert]:
    """One firing message per group of newly opened problems, one resolved message per group closed."""
    alerts = []
    for group, problems in _by_group(changes.opened).items():
        alerts.append(_alert("firing", group, problems))
    closed_by_group = defaultdict(list)
    for problem, since in changes.closed:
        closed_by_group[problem.group].append((problem, since))
    for group, items in closed_by_group.items():
        problems = [problem for problem, _ in items]
        started = min(dt.datetime.fromisoformat(since) for _, since in items)
        alert = _alert("resolved", group, problems)
        minutes = max(0, int((now - started).total_seconds() // 60))
        fields = dict(alert.fields) | {"Open for": f"{minutes // 60} h {minutes % 60:02d} min"}
        alerts.append(Alert(**(alert.to_dict() | {"fields": fields})))
    return alerts


def _by_group(problems: list[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        grouped[problem.group].append(problem)
    return grouped


def _alert(status: str, group: str, problems: list[Problem]) -> Alert:
    kind = problems[0].kind
    subject = group.split(":", 1)[1] if ":" in group else group
    count = f" ({len(problems)})" if kind in ("stale_symbols", "check", "closed_gold") else ""
    prefix = "Resolved: " if status == "resolved" else ""
    lines = [f"• {problem.line}" for problem in problems[:MAX_LINES_PER_ALERT]]
    if len(problems) > MAX_LINES_PER_ALERT:
        lines.append(f"• … and {len(problems) - MAX_LINES_PER_ALERT} more")
    fields = dict(problems[0].fields)
    if kind == "stale_symbols":
        fields["Symbols"] = ", ".join(sorted(p.key.rsplit(":", 1)[1] for p in problems))
    return Alert(
        status=status,
        kind=kind,
        title=f"{prefix}{TITLES[kind]}: {subject}{count}",
        text="\n".join(lines),
        fields=fields,
        problems=tuple(problem.key for problem in problems),
    )
