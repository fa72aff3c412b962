"""Consensus: decisions of a swarm taken by recorded votes under a stated rule.

A decision is a row of ``consensus_decisions``. Its electorate is the swarm's members that are
not terminated, fixed when it is requested and kept, with each member's weight, in
``voting_data``. The rules (README, "Consensus rules"), with a = approvals, r = rejections:

- majority:  a / (a + r) > threshold (default 0.5); abstentions are not votes cast.
- weighted:  the same with each vote weighing (member weight x vote confidence); a member's weight
             is its ``performance_score`` at request time, or 1 for everyone when every member's
             score is 0. A zero total weight counts as ratio 0.
- byzantine: at least 4 members (n >= 3f + 1); a / n > max(2/3, threshold).

A ratio with a zero denominator is 0 (not approved). Arithmetic is exact (fractions of the
decimal values as written), so threshold edges behave as a person computes them.

A decision closes as soon as its outcome can no longer change whatever the remaining members
vote (best and worst cases below), and otherwise at its deadline with decision ``timeout``,
which counts as rejected. Deadlines are checked lazily, with :func:`clock.now`, whenever a
decision is read or voted on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from gemini_flow_cli.core import audit, clock, durations, events, listing
from gemini_flow_cli.core.tasks import next_ids
from gemini_flow_cli.errors import GeminiFlowError

TYPES = ("majority", "weighted", "byzantine")
CHOICES = ("approve", "reject", "abstain")
OUTCOMES = ("pending", "approved", "rejected", "timeout")
DEFAULT_THRESHOLD = {"majority": 0.5, "weighted": 0.5, "byzantine": 2 / 3}
DEFAULT_TIMEOUT_MS = 30_000
BYZANTINE_MIN = 4
TWO_THIRDS = Fraction(2, 3)

DECISION_COLUMNS = (
    "id, swarm_id, proposal, decision, confidence, participants, timestamp, voting_data, "
    "consensus_type, threshold, duration_ms, dissenting_votes"
)


def exact(value: float | int | Fraction) -> Fraction:
    """The decimal a person wrote, exactly: ``0.6`` is 3/5, not the nearest binary float."""
    if isinstance(value, Fraction):
        return value
    return Fraction(repr(float(value))) if not isinstance(value, int) else Fraction(value)


@dataclass(frozen=True)
class Outcome:
    """The state of a decision under its rule."""

    decision: str  # 'approved', 'rejected' or 'pending'
    ratio: Fraction | None  # the rule's approval share now (None: zero denominator)
    best: Fraction  # the highest share the remaining votes can reach
    worst: Fraction  # the lowest

    @property
    def closed(self) -> bool:
        return self.decision != "pending"


def _share(num: Fraction, den: Fraction) -> Fraction | None:
    return num / den if den else None


def evaluate(
    kind: str,
    threshold: float,
    weights: Mapping[str, float],
    votes: Sequence[tuple[str, str, float]],
) -> Outcome:
    """The outcome of a decision: pure, so anyone can check it by hand.

    ``weights``: the electorate, member -> weight (only ``weighted`` uses it). ``votes``:
    ``(member, 'approve'|'reject'|'abstain', confidence)``. Approved when the worst case still
    passes, rejected when the best case cannot pass, else pending.
    """
    t = exact(threshold)
    voted = {agent for agent, _choice, _conf in votes}
    remaining = [agent for agent in weights if agent not in voted]
    if kind == "byzantine":
        n = len(weights)
        bar = max(TWO_THIRDS, t)
        a = sum(1 for _agent, choice, _conf in votes if choice == "approve")
        ratio = Fraction(a, n) if n else Fraction(0)
        best = Fraction(a + len(remaining), n) if n else Fraction(0)
        worst = ratio
        passes = lambda share: share is not None and share > bar  # noqa: E731
    else:
        if kind == "weighted":
            weight = lambda agent, conf: exact(weights[agent]) * exact(conf)  # noqa: E731
            left = sum((exact(weights[agent]) for agent in remaining), Fraction(0))
        elif kind == "majority":
            weight = lambda agent, conf: Fraction(1)  # noqa: E731
            left = Fraction(len(remaining))
        else:
            raise GeminiFlowError("INVALID_INPUT", f"invalid consensus type {kind!r}: use one of {', '.join(TYPES)}")
        yes = sum((weight(a, c) for a, ch, c in votes if ch == "approve"), Fraction(0))
        no = sum((weight(a, c) for a, ch, c in votes if ch == "reject"), Fraction(0))
        ratio = _share(yes, yes + no)
        best = _share(yes + left, yes + no + left) or Fraction(0)
        worst = _share(yes, yes + no + left) or Fraction(0)
        passes = lambda share: share is not None and share > t  # noqa: E731
    if passes(worst):
        decision = "approved"
    elif not passes(best):
        decision = "rejected"
    else:
        decision = "pending"
    return Outcome(decision, ratio, best, worst)


def confidence_of(decision: str, ratio: Fraction | None) -> float | None:
    """The share behind the decision: the approval share when approved, its complement when
    rejected or timed out, 0 when no weight was cast; None while pending."""
    if decision == "pending":
        return None
    if ratio is None:
        return 0.0
    return round(float(ratio if decision == "approved" else 1 - ratio), 6)


# -- rows and views --------------------------------------------------------------------------


def _row(conn, decision_id: str) -> dict[str, Any] | None:
    cur = conn.execute(f"SELECT {DECISION_COLUMNS} FROM consensus_decisions WHERE id = ?", (decision_id,))
    row = cur.fetchone()
    if row is None:
        return None
    out = dict(zip([d[0] for d in cur.description], row))
    out["data"] = json.loads(out["voting_data"] or "{}")
    return out


def _require(conn, decision_id: str) -> dict[str, Any]:
    row = _row(conn, decision_id)
    if row is None:
        raise GeminiFlowError("NOT_FOUND", f"decision {decision_id!r} not found", details={"decisionId": decision_id})
    return row


def view(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's "Request Consensus" response shape, plus the rule and the electorate."""
    data = row["data"]
    return {
        "decisionId": row["id"],
        "proposal": row["proposal"],
        "decision": row["decision"],
        "confidence": row["confidence"],
        "participants": row["participants"],
        "duration": row["duration_ms"],
        "votingData": {
            "approve": data.get("approve", 0),
            "reject": data.get("reject", 0),
            "abstain": data.get("abstain", 0),
            "details": [
                {"agent": d["agent"], "vote": d["vote"], "confidence": d["confidence"], "weight": d["weight"],
                 "votedAt": clock.iso(d.get("at")), **({"late": True} if d.get("late") else {})}
                for d in data.get("details", [])
            ],
        },
        "swarmId": row["swarm_id"],
        "type": row["consensus_type"],
        "threshold": row["threshold"],
        "electorate": [e["agent"] for e in data.get("electorate", [])],
        "dissentingVotes": row["dissenting_votes"],
        "requestedAt": clock.iso(data.get("requestedAt")),
        "deadline": clock.iso(data.get("deadline")),
        "closedAt": clock.iso(data.get("closedAt")),
        "metadata": data.get("metadata"),
    }


def _weights(data: dict[str, Any]) -> dict[str, float]:
    return {e["agent"]: e["weight"] for e in data.get("electorate", [])}


def _votes(data: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(d["agent"], d["vote"], d["confidence"]) for d in data.get("details", [])]


def _store(db, conn, row: dict[str, Any], data: dict[str, Any], outcome: Outcome | None, decision: str, now: float) -> None:
    """Write the tally, and the result when ``decision`` closes the decision."""
    sets: dict[str, Any] = {
        "participants": len(data["details"]),
    }
    if decision != "pending":
        ratio = outcome.ratio if outcome is not None else None
        if decision == "timeout":
            ratio = evaluate(row["consensus_type"], row["threshold"], _weights(data), _votes(data)).ratio
        data["closedAt"] = now
        data["ratio"] = None if ratio is None else float(ratio)
        dissent = data["reject"] if decision == "approved" else data["approve"]
        sets.update(
            decision=decision,
            confidence=confidence_of(decision, ratio),
            duration_ms=int(round((now - data["requestedAt"]) * 1000)),
            dissenting_votes=dissent,
        )
    sets["voting_data"] = json.dumps(data, ensure_ascii=False, sort_keys=True)
    assignments = ", ".join(f"{k} = ?" for k in sets)
    conn.execute(f"UPDATE consensus_decisions SET {assignments} WHERE id = ? AND decision = 'pending'",
                 [*sets.values(), row["id"]])
    if decision != "pending":
        audit.record(db, "consensus", row["id"], "close", before={"decision": "pending"},
                     after={"decision": decision, "confidence": sets["confidence"]})
        events.record(db, "consensus.decided", lambda: view(_require(conn, row["id"])))


def _expire_if_due(db, conn, row: dict[str, Any]) -> bool:
    """Close a pending decision whose deadline passed as ``timeout`` (at its deadline)."""
    data = row["data"]
    if row["decision"] != "pending" or clock.now() < data["deadline"]:
        return False
    _store(db, conn, row, data, None, "timeout", data["deadline"])
    return True


# -- commands --------------------------------------------------------------------------------


def request(
    db,
    swarm_id: str,
    proposal: str,
    kind: str,
    *,
    threshold: float | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    metadata: Any = None,
) -> dict[str, Any]:
    """Open a decision for the swarm's current members. Returns the decision (pending).

    Unknown swarm: NOT_FOUND. Shut-down swarm: CONFLICT. No members, a threshold outside
    [0, 1) (byzantine: [2/3, 1)), or byzantine with fewer than 4 members: INVALID_INPUT.
    """
    if kind not in TYPES:
        raise GeminiFlowError("INVALID_INPUT", f"invalid consensus type {kind!r}: use one of {', '.join(TYPES)}")
    if not proposal or not proposal.strip():
        raise GeminiFlowError("INVALID_INPUT", "the proposal must not be empty")
    t = DEFAULT_THRESHOLD[kind] if threshold is None else float(threshold)
    if not math.isfinite(t):
        raise GeminiFlowError("INVALID_INPUT", f"invalid threshold {t}: use a number below 1")
    low = TWO_THIRDS if kind == "byzantine" else Fraction(0)
    if not (low <= exact(t) < 1) and not (kind == "byzantine" and t == DEFAULT_THRESHOLD["byzantine"]):
        raise GeminiFlowError(
            "INVALID_INPUT",
            f"invalid threshold {t:g} for {kind}: use a value from {'2/3' if kind == 'byzantine' else '0'} up to (not including) 1",
        )
    if timeout_ms is None or timeout_ms <= 0:
        raise GeminiFlowError("INVALID_INPUT", "--timeout must be a positive number of milliseconds")
    durations.after(clock.now(), timeout_ms / 1000, what="--timeout")  # refused before anything is written
    if metadata is not None and not isinstance(metadata, dict):
        raise GeminiFlowError("INVALID_INPUT", "--metadata must be a JSON object")

    with db.write() as conn:
        swarm = conn.execute("SELECT status FROM swarms WHERE id = ?", (swarm_id,)).fetchone()
        if swarm is None:
            raise GeminiFlowError("NOT_FOUND", f"swarm {swarm_id!r} not found", details={"swarmId": swarm_id})
        if swarm[0] == "shutdown":
            raise GeminiFlowError("CONFLICT", f"swarm {swarm_id!r} is shut down and takes no new decisions")
        members = conn.execute(
            """
            SELECT a.id, COALESCE(a.performance_score, 0.0)
            FROM swarm_members m JOIN agents a ON a.id = m.agent_id
            WHERE m.swarm_id = ? AND COALESCE(a.status, 'active') != 'terminated'
            ORDER BY a.id
            """,
            (swarm_id,),
        ).fetchall()
        if not members:
            raise GeminiFlowError("INVALID_INPUT", f"swarm {swarm_id!r} has no members to vote")
        n = len(members)
        if kind == "byzantine" and n < BYZANTINE_MIN:
            raise GeminiFlowError(
                "INVALID_INPUT",
                f"byzantine consensus needs at least {BYZANTINE_MIN} members (n >= 3f + 1 with f >= 1); "
                f"swarm {swarm_id!r} has {n}",
            )
        all_zero = all(score == 0 for _agent, score in members)
        electorate = [
            {"agent": agent, "weight": 1.0 if (kind != "weighted" or all_zero) else float(score)}
            for agent, score in members
        ]
        now = clock.now()
        (decision_id,) = next_ids(conn, "consensus_decisions", "decision")
        data = {
            "approve": 0, "reject": 0, "abstain": 0, "details": [],
            "electorate": electorate,
            "faultTolerance": (n - 1) // 3,
            "requestedAt": now,
            "deadline": durations.after_exact(now, timeout_ms / 1000, what="--timeout"),
            "timeoutMs": timeout_ms,
            "closedAt": None,
            "metadata": metadata,
        }
        conn.execute(
            """
            INSERT INTO consensus_decisions (id, swarm_id, proposal, decision, confidence, participants,
                timestamp, voting_data, consensus_type, threshold, duration_ms, dissenting_votes)
            VALUES (?, ?, ?, 'pending', NULL, 0, ?, ?, ?, ?, NULL, 0)
            """,
            (decision_id, swarm_id, proposal, int(now), json.dumps(data, ensure_ascii=False, sort_keys=True), kind, t),
        )
        row = _require(conn, decision_id)
        outcome = evaluate(kind, t, _weights(data), [])
        if outcome.closed:  # cannot happen with a valid threshold; kept for the rule's sake
            _store(db, conn, row, data, outcome, outcome.decision, now)
            row = _require(conn, decision_id)
        audit.record(db, "consensus", decision_id, "request",
                     after={"swarmId": swarm_id, "type": kind, "threshold": t, "electorate": n,
                            "timeoutMs": timeout_ms})
        events.record(db, "consensus.requested", lambda: view(row))
        return view(row)


def vote(db, decision_id: str, agent_id: str, choice: str, *, confidence: float = 1.0) -> dict[str, Any]:
    """Record one member's vote, and close the decision when its outcome is settled.

    Outsider: PERMISSION_DENIED (exit 4). A second vote, or a vote after the timeout: CONFLICT
    (exit 3). A vote after the outcome became certain but before the timeout is a late vote:
    recorded in the voting data with ``"late": true``, the decision unchanged. A decision found past its deadline is closed as ``timeout`` (that is kept)
    before the vote is refused. Read-then-write inside BEGIN IMMEDIATE: the outcome depends on
    the whole tally, so concurrent voters queue on the write lock and every vote is counted.
    """
    if choice not in CHOICES:
        raise GeminiFlowError("INVALID_INPUT", f"invalid vote {choice!r}: use one of {', '.join(CHOICES)}")
    if confidence is None or not (0.0 <= confidence <= 1.0):
        raise GeminiFlowError("INVALID_INPUT", "--confidence must be between 0 and 1")
    refusal: GeminiFlowError | None = None
    with db.write() as conn:
        row = _require(conn, decision_id)
        data = row["data"]
        weights = _weights(data)
        expired = _expire_if_due(db, conn, row)
        if agent_id not in weights:
            refusal = GeminiFlowError(
                "PERMISSION_DENIED",
                f"agent {agent_id!r} is not in the electorate of decision {decision_id!r}",
                details={"decisionId": decision_id, "agentId": agent_id},
            )
        elif (not expired and row["decision"] not in ("pending", "timeout") and clock.now() < data["deadline"]
              and not any(d["agent"] == agent_id for d in data["details"])):
            # A late vote (CLI.md §7): the outcome was already certain; an eligible member who had
            # not voted may still vote until the timeout. Recorded, never changing the decision.
            now = clock.now()
            weight = weights[agent_id] if row["consensus_type"] == "weighted" else 1.0
            data["details"].append({"agent": agent_id, "vote": choice, "confidence": float(confidence),
                                    "weight": weight, "at": now, "late": True})
            conn.execute("UPDATE consensus_decisions SET voting_data = ? WHERE id = ?",
                         (json.dumps(data, ensure_ascii=False, sort_keys=True), decision_id))
            audit.record(db, "consensus", decision_id, "vote",
                         after={"agent": agent_id, "vote": choice, "confidence": float(confidence), "late": True})
            events.record(db, "consensus.voted", {"decisionId": decision_id, "agent": agent_id, "vote": choice,
                                                  "confidence": float(confidence), "late": True})
            conn.execute("UPDATE agents SET last_activity = ? WHERE id = ?", (int(now), agent_id))
            return view(_require(conn, decision_id))
        elif expired or row["decision"] != "pending":
            final = "timeout" if expired else row["decision"]
            refusal = GeminiFlowError(
                "CONFLICT", f"decision {decision_id!r} is closed ({final}); no more votes",
                details={"decisionId": decision_id, "decision": final},
            )
        elif any(d["agent"] == agent_id for d in data["details"]):
            refusal = GeminiFlowError(
                "CONFLICT", f"agent {agent_id!r} already voted on decision {decision_id!r}",
                details={"decisionId": decision_id, "agentId": agent_id},
            )
        else:
            now = clock.now()
            weight = weights[agent_id] if row["consensus_type"] == "weighted" else 1.0
            data["details"].append({"agent": agent_id, "vote": choice, "confidence": float(confidence),
                                    "weight": weight, "at": now})
            data[choice] += 1
            audit.record(db, "consensus", decision_id, "vote",
                         after={"agent": agent_id, "vote": choice, "confidence": float(confidence)})
            events.record(db, "consensus.voted", {"decisionId": decision_id, "agent": agent_id, "vote": choice,
                                                  "confidence": float(confidence), "late": False})
            outcome = evaluate(row["consensus_type"], row["threshold"], weights, _votes(data))
            _store(db, conn, row, data, outcome, outcome.decision, now)
            conn.execute("UPDATE agents SET last_activity = ? WHERE id = ?", (int(now), agent_id))
            return view(_require(conn, decision_id))
    raise refusal


def show(db, decision_id: str) -> dict[str, Any]:
    """One decision (closing it first if its deadline passed)."""
    with db.read() as conn:
        row = _require(conn, decision_id)
    if row["decision"] == "pending" and clock.now() >= row["data"]["deadline"]:
        with db.write() as conn:
            row = _require(conn, decision_id)
            if _expire_if_due(db, conn, row):
                row = _require(conn, decision_id)
    return view(row)


def list_decisions(
    db, *, swarm_id: str | None = None, decision: str | None = None,
    limit: int = listing.DEFAULT_LIMIT, offset: int = 0,
) -> dict[str, Any]:
    """Decisions in request order (closing those whose deadline passed first): one page
    ``{"decisions", "total" (every match), "limit", "offset"}``. An unknown outcome is
    INVALID_INPUT, an unknown swarm NOT_FOUND (core/listing.py)."""
    listing.check_choice(decision, OUTCOMES, "--decision")
    listing.check_page(limit, offset)
    with db.read() as conn:
        listing.require_id(conn, "swarm", swarm_id)
        due = [
            r[0] for r in conn.execute(
                "SELECT id, voting_data FROM consensus_decisions WHERE decision = 'pending'"
            ).fetchall()
            if clock.now() >= json.loads(r[1] or "{}").get("deadline", float("inf"))
        ]
    if due:
        with db.write() as conn:
            for decision_id in due:
                _expire_if_due(db, conn, _require(conn, decision_id))
    where, params = [], []
    if swarm_id is not None:
        where.append("swarm_id = ?")
        params.append(swarm_id)
    if decision is not None:
        where.append("decision = ?")
        params.append(decision)
    sql = f"SELECT id FROM consensus_decisions{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY rowid"
    with db.read() as conn:
        rows, total = listing.page_query(conn, sql, params, limit, offset)
        found = [view(_require(conn, r["id"])) for r in rows]
    return {"decisions": found, "total": total, "limit": limit, "offset": offset}


def wait(
    db, decision_id: str, *, timeout: float | None = None, poll: float = 0.1,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Block until the decision is closed (decided or timed out) and return it.

    Every decision closes by its own deadline, so without ``timeout`` this ends. Past
    ``timeout`` seconds of waiting: NOT_FOUND (exit 1), as ``task wait``. Wakes when another
    process commits (the mechanism of ``memory watch``, core/waiting.py), and at least every
    ``poll`` seconds (a decision also closes by time alone).
    """
    from gemini_flow_cli.core.waiting import Waiter

    end = None if timeout is None else monotonic() + timeout
    waiter = Waiter(db, sleep=sleep, monotonic=monotonic)
    while True:
        current = show(db, decision_id)
        if current["decision"] != "pending":
            return current
        left = None if end is None else end - monotonic()
        if left is not None and left <= 0:
            raise GeminiFlowError(
                "NOT_FOUND", f"decision {decision_id!r} was not decided within {timeout:g} s",
                details={"decisionId": decision_id, "decision": "pending", "timedOut": True},
            )
        waiter.wait(monotonic() + (poll if left is None else min(poll, left)))
