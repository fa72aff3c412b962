"""Consensus: decisions by recorded votes under majority, weighted and byzantine rules."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import pytest

from coordination_fixtures import execute, query, setup_swarm
from conftest import gemini_flow_command
from gemini_flow_cli.core import clock, consensus


def members(n):
    return tuple(f"agent-{i}" for i in range(1, n + 1))


def request(cli, *args, swarm="swarm-1"):
    result = cli("consensus", "request", "--swarm", swarm, "--proposal", "Deploy", *args)
    assert result.exit_code == 0, result
    return result.json["decisionId"]


def vote(cli, decision, agent, choice, *args):
    return cli("consensus", "vote", decision, choice, "--agent", agent, *args)


# -- the rules, by hand ----------------------------------------------------------------------

W4 = {a: 1.0 for a in "abcd"}


@pytest.mark.parametrize(
    "kind, threshold, weights, votes, expected",
    [
        # majority: approvals / (approvals + rejections) > threshold
        ("majority", 0.5, W4, [("a", "approve"), ("b", "reject"), ("c", "approve"), ("d", "reject")], "rejected"),  # tie 2/4
        ("majority", 0.5, W4, [("a", "approve"), ("b", "approve"), ("c", "reject")], "pending"),  # 2/4 .. 3/4
        ("majority", 0.5, W4, [("a", "approve"), ("b", "approve"), ("c", "approve")], "approved"),  # worst 3/4
        ("majority", 0.5, W4, [("a", "reject"), ("b", "reject")], "rejected"),  # best 2/4
        ("majority", 0.5, W4, [("a", "abstain"), ("b", "abstain"), ("c", "approve"), ("d", "reject")], "rejected"),  # 1/2
        ("majority", 0.5, W4, [("a", "abstain"), ("b", "abstain"), ("c", "abstain"), ("d", "approve")], "approved"),  # 1/1
        ("majority", 0.5, W4, [("a", "abstain"), ("b", "abstain"), ("c", "abstain"), ("d", "abstain")], "rejected"),  # 0 cast
        ("majority", 0.5, W4, [("a", "abstain"), ("b", "abstain"), ("c", "abstain")], "pending"),
        ("majority", 0.6, {a: 1.0 for a in "abcde"},
         [("a", "approve"), ("b", "approve"), ("c", "approve"), ("d", "reject"), ("e", "reject")], "rejected"),  # 3/5 = 0.6
        ("majority", 0.59, {a: 1.0 for a in "abcde"},
         [("a", "approve"), ("b", "approve"), ("c", "approve"), ("d", "reject"), ("e", "reject")], "approved"),
        ("majority", 0.0, W4, [("a", "approve")], "approved"),  # 1/(1+3) > 0
        # byzantine: approvals / n > 2/3
        ("byzantine", 2 / 3, W4, [("a", "approve"), ("b", "approve"), ("c", "approve")], "approved"),  # 3/4
        ("byzantine", 2 / 3, W4, [("a", "approve"), ("b", "approve"), ("c", "reject")], "pending"),
        ("byzantine", 2 / 3, W4, [("a", "approve"), ("b", "reject"), ("c", "reject")], "rejected"),  # best 2/4
        ("byzantine", 2 / 3, W4, [("a", "approve"), ("b", "approve"), ("c", "approve"), ("d", "approve")], "approved"),
        ("byzantine", 0.75, W4, [("a", "approve"), ("b", "approve"), ("c", "approve"), ("d", "reject")], "rejected"),  # 3/4 = .75
        ("byzantine", 2 / 3, {a: 1.0 for a in "abcdefg"},
         [(a, "approve") for a in "abcd"] + [("e", "abstain")], "pending"),  # 4/7, best 6/7
        ("byzantine", 2 / 3, {a: 1.0 for a in "abcdefg"},
         [(a, "approve") for a in "abcde"], "approved"),  # 5/7 > 2/3
        ("byzantine", 2 / 3, {a: 1.0 for a in "abcdefg"},
         [(a, "approve") for a in "abcd"] + [(a, "reject") for a in "efg"], "rejected"),  # 4/7
        ("byzantine", 2 / 3, {a: 1.0 for a in "abcdefg"},
         [("a", "reject"), ("b", "abstain"), ("c", "reject")], "rejected"),  # best 4/7: abstain is not approval
        # weighted: sum(weight x confidence) of approvals / of approvals and rejections
        ("weighted", 0.5, {"a": 0.9, "b": 0.5, "c": 0.2}, [("a", "approve")], "approved"),  # worst .9/1.6
        ("weighted", 0.5, {"a": 0.2, "b": 0.5, "c": 0.9}, [("a", "approve"), ("b", "approve")], "pending"),  # .7/1.6
        ("weighted", 0.5, {"a": 0.2, "b": 0.5, "c": 0.9},
         [("a", "approve"), ("b", "approve"), ("c", "reject")], "rejected"),  # .7/1.6
        ("weighted", 0.5, {"a": 0.0, "b": 0.8}, [("a", "approve"), ("b", "reject")], "rejected"),  # 0/.8
        ("weighted", 0.5, {"a": 0.0, "b": 0.0}, [], "rejected"),  # no weight can ever approve
    ],
)
def test_rules_against_hand_computed_cases(kind, threshold, weights, votes, expected):
    outcome = consensus.evaluate(kind, threshold, weights, [(a, v, 1.0) for a, v in votes])
    assert outcome.decision == expected


def test_weighted_votes_multiply_score_and_confidence():
    weights = {"a": 0.8, "b": 0.4, "c": 0.5}
    votes = [("a", "approve", 0.5), ("b", "reject", 1.0), ("c", "reject", 0.0)]
    outcome = consensus.evaluate("weighted", 0.5, weights, votes)
    assert outcome.ratio == Fraction(1, 2)  # 0.4 / (0.4 + 0.4 + 0)
    assert outcome.decision == "rejected"  # not > 0.5


# -- request ---------------------------------------------------------------------------------


def test_request_returns_the_seed_shape_and_stores_the_row(cli, db_path):
    setup_swarm(db_path, agents=members(3))
    data = cli("consensus", "request", "--swarm", "swarm-1", "--proposal", "Deploy", "--type", "majority",
               "--timeout", "5000", "--metadata", '{"env": "prod"}').json
    assert list(data)[:7] == ["decisionId", "proposal", "decision", "confidence", "participants", "duration", "votingData"]
    assert re.fullmatch(r"decision-[0-9a-z]{16}", data["decisionId"]) and data["decision"] == "pending"
    assert data["votingData"] == {"approve": 0, "reject": 0, "abstain": 0, "details": []}
    assert data["electorate"] == list(members(3)) and data["metadata"] == {"env": "prod"}
    row = query(db_path, "SELECT swarm_id, decision, consensus_type, threshold, participants FROM consensus_decisions")
    assert row == [("swarm-1", "pending", "majority", 0.5, 0)]


@pytest.mark.parametrize(
    "args, status",
    [
        (("--type", "byzantine"), 2),  # 3 members < 4
        (("--type", "plurality"), 2),
        (("--type", "majority", "--threshold", "1"), 2),
        (("--type", "majority", "--threshold", "-0.1"), 2),
        (("--type", "byzantine", "--threshold", "0.6"), 2),
        (("--type", "majority", "--timeout", "0"), 2),
        (("--type", "majority", "--metadata", "[]"), 2),
    ],
)
def test_request_refusals_record_nothing(cli, db_path, args, status):
    setup_swarm(db_path, agents=members(3))
    result = cli("consensus", "request", "--swarm", "swarm-1", "--proposal", "p", *args)
    assert result.exit_code == status, result
    assert query(db_path, "SELECT COUNT(*) FROM consensus_decisions") == [(0,)]


def test_request_unknown_swarm_exits_1_and_shut_down_swarm_exits_3(cli, db_path):
    setup_swarm(db_path, status="shutdown")
    assert cli("consensus", "request", "--swarm", "nope", "--proposal", "p", "--type", "majority").exit_code == 1
    assert cli("consensus", "request", "--swarm", "swarm-1", "--proposal", "p", "--type", "majority").exit_code == 3


def test_electorate_is_fixed_at_request_time(cli, db_path):
    setup_swarm(db_path, agents=members(2))
    decision = request(cli, "--type", "majority")
    execute(db_path, "INSERT INTO agents (id, name, type) VALUES ('late', 'late', 'coder')")
    execute(db_path, "INSERT INTO swarm_members VALUES ('swarm-1', 'late', 0)")
    assert vote(cli, decision, "late", "approve").exit_code == 4
    execute(db_path, "DELETE FROM swarm_members WHERE agent_id = 'agent-1'")
    assert vote(cli, decision, "agent-1", "abstain").exit_code == 0


def test_terminated_members_are_not_in_the_electorate(cli, db_path):
    setup_swarm(db_path, agents=members(4))
    execute(db_path, "UPDATE agents SET status = 'terminated' WHERE id = 'agent-4'")
    assert cli("consensus", "request", "--swarm", "swarm-1", "--proposal", "p", "--type", "byzantine").exit_code == 2
    decision = request(cli, "--type", "majority")
    assert vote(cli, decision, "agent-4", "approve").exit_code == 4


# -- votes -----------------------------------------------------------------------------------


def test_byzantine_with_four_members(cli, db_path):
    setup_swarm(db_path, agents=members(4))
    decision = request(cli, "--type", "byzantine")
    for agent in ("agent-1", "agent-2"):
        assert vote(cli, decision, agent, "approve").json["decision"] == "pending"
    assert vote(cli, decision, "agent-3", "reject").json["decision"] == "pending"
    data = vote(cli, decision, "agent-4", "approve").json
    assert (data["decision"], data["confidence"], data["participants"]) == ("approved", 0.75, 4)
    assert data["votingData"]["approve"] == 3 and data["votingData"]["reject"] == 1
    assert query(db_path, "SELECT dissenting_votes FROM consensus_decisions") == [(1,)]


def test_byzantine_with_seven_members_closes_early_on_three_rejections(cli, db_path):
    setup_swarm(db_path, agents=members(7))
    decision = request(cli, "--type", "byzantine")
    for agent in ("agent-1", "agent-2"):
        vote(cli, decision, agent, "reject")
    data = vote(cli, decision, "agent-3", "reject").json  # best case 4/7 < 2/3
    assert data["decision"] == "rejected" and data["confidence"] == 1.0
    late = vote(cli, decision, "agent-4", "approve")  # a late vote: recorded, decision unchanged
    assert late.exit_code == 0, late
    assert late.json["decision"] == "rejected" and late.json["confidence"] == 1.0
    assert late.json["votingData"]["details"][-1] == {**late.json["votingData"]["details"][-1], "agent": "agent-4",
                                                       "vote": "approve", "late": True}
    assert late.json["votingData"]["approve"] == 0 and late.json["dissentingVotes"] == data["dissentingVotes"]
    assert vote(cli, decision, "agent-4", "approve").exit_code == 3  # voting twice


def test_a_vote_after_the_timeout_exits_3(cli, db_path, monkeypatch):
    setup_swarm(db_path, agents=members(7))
    decision = request(cli, "--type", "byzantine", "--timeout", "60")
    for agent in ("agent-1", "agent-2", "agent-3"):
        vote(cli, decision, agent, "reject")
    later = clock.now() + 120
    monkeypatch.setattr("gemini_flow_cli.core.clock.now", lambda: later)
    after = vote(cli, decision, "agent-4", "approve")
    assert after.exit_code == 3 and after.error["code"] == "CONFLICT"


def test_majority_closes_early_once_the_outcome_is_settled(cli, db_path):
    setup_swarm(db_path, agents=members(5))
    decision = request(cli, "--type", "majority")
    vote(cli, decision, "agent-1", "approve")
    vote(cli, decision, "agent-2", "approve")
    data = vote(cli, decision, "agent-3", "approve", "--confidence", "0.4").json  # worst 3/5
    assert data["decision"] == "approved" and data["confidence"] == 1.0
    assert data["duration"] is not None and data["closedAt"] is not None
    late = vote(cli, decision, "agent-4", "reject")  # late: recorded, the decision stands
    assert late.exit_code == 0 and late.json["decision"] == data["decision"]
    assert late.json["votingData"]["details"][-1]["late"] is True


def test_majority_tie_is_rejected(cli, db_path):
    setup_swarm(db_path, agents=members(4))
    decision = request(cli, "--type", "majority")
    for agent, choice in zip(members(4), ("approve", "reject", "approve", "reject")):
        data = vote(cli, decision, agent, choice).json
    assert (data["decision"], data["confidence"], data["dissentingVotes"]) == ("rejected", 0.5, 2)


def test_weighted_uses_performance_scores_at_request_time(cli, db_path):
    setup_swarm(db_path, agents=members(3), scores={"agent-1": 0.2, "agent-2": 0.5, "agent-3": 0.9})
    decision = request(cli, "--type", "weighted")
    execute(db_path, "UPDATE agents SET performance_score = 1.0")  # too late to matter
    vote(cli, decision, "agent-1", "approve")
    assert vote(cli, decision, "agent-2", "approve").json["decision"] == "pending"
    data = vote(cli, decision, "agent-3", "reject").json  # .7 / 1.6
    assert data["decision"] == "rejected" and data["confidence"] == round(0.9 / 1.6, 6)
    assert [d["weight"] for d in data["votingData"]["details"]] == [0.2, 0.5, 0.9]


def test_weighted_with_all_scores_zero_weighs_everyone_equally(cli, db_path):
    setup_swarm(db_path, agents=members(3))
    decision = request(cli, "--type", "weighted")
    vote(cli, decision, "agent-1", "approve", "--confidence", "1")
    data = vote(cli, decision, "agent-2", "approve", "--confidence", "0.5").json  # worst 1.5/2.5
    assert data["decision"] == "approved" and data["confidence"] == 1.0


def test_outsider_exits_4_and_second_vote_exits_3(cli, db_path):
    setup_swarm(db_path, agents=members(3))
    execute(db_path, "INSERT INTO agents (id, name, type) VALUES ('stranger', 's', 'coder')")
    decision = request(cli, "--type", "majority")
    result = vote(cli, decision, "stranger", "approve")
    assert result.exit_code == 4 and result.error["code"] == "PERMISSION_DENIED"
    assert vote(cli, decision, "agent-1", "abstain").exit_code == 0
    assert vote(cli, decision, "agent-1", "approve").exit_code == 3
    assert cli("consensus", "vote", "decision-9", "approve", "--agent", "agent-1").exit_code == 1
    assert vote(cli, decision, "agent-2", "maybe").exit_code == 2
    assert vote(cli, decision, "agent-2", "approve", "--confidence", "2").exit_code == 2
    assert cli("consensus", "show", decision).json["participants"] == 1


# -- timeouts --------------------------------------------------------------------------------


def test_timeout_closes_the_decision_as_rejected_when_read(cli, db_path, monkeypatch):
    setup_swarm(db_path, agents=members(3))
    monkeypatch.setattr(clock, "now", lambda: 1_000_000.0)
    decision = request(cli, "--type", "majority", "--timeout", "2500")
    vote(cli, decision, "agent-1", "approve")
    monkeypatch.setattr(clock, "now", lambda: 1_000_002.4)
    assert cli("consensus", "show", decision).json["decision"] == "pending"
    monkeypatch.setattr(clock, "now", lambda: 1_000_002.5)
    data = cli("consensus", "show", decision).json
    assert (data["decision"], data["duration"], data["closedAt"]) == ("timeout", 2500, clock.iso(1_000_002.5))
    assert data["dissentingVotes"] == 1
    row = query(db_path, "SELECT decision, duration_ms FROM consensus_decisions")
    assert row == [("timeout", 2500)]


def test_vote_after_the_deadline_exits_3_and_keeps_the_timeout(cli, db_path, monkeypatch):
    setup_swarm(db_path, agents=members(3))
    monkeypatch.setattr(clock, "now", lambda: 1_000_000.0)
    decision = request(cli, "--type", "majority", "--timeout", "1000")
    monkeypatch.setattr(clock, "now", lambda: 1_000_005.0)
    result = vote(cli, decision, "agent-1", "approve")
    assert result.exit_code == 3 and "timeout" in result.error["message"]
    assert query(db_path, "SELECT decision, participants FROM consensus_decisions") == [("timeout", 0)]
    assert cli("consensus", "list", "--decision", "timeout").json["total"] == 1


def test_list_closes_due_decisions_and_filters(cli, db_path, monkeypatch):
    setup_swarm(db_path, agents=members(2))
    monkeypatch.setattr(clock, "now", lambda: 1_000_000.0)
    first = request(cli, "--type", "majority", "--timeout", "1000")
    request(cli, "--type", "majority", "--timeout", "60000")
    monkeypatch.setattr(clock, "now", lambda: 1_000_010.0)
    assert [d["decisionId"] for d in cli("consensus", "list", "--decision", "timeout").json["decisions"]] == [first]
    assert cli("consensus", "list", "--decision", "pending").json["total"] == 1
    assert cli("consensus", "list", "--swarm", "other").exit_code == 1  # an unknown id, as everywhere


def test_wait_returns_once_decided_and_gives_up_with_exit_1(cli, db_path, run):
    setup_swarm(db_path, agents=members(1))
    decision = request(cli, "--type", "majority")
    timed_out = run("--json", "consensus", "wait", decision, "--timeout", "0.3")
    assert timed_out.returncode == 1
    waiter = subprocess.Popen([*gemini_flow_command(), "--db", str(db_path), "--json", "consensus", "wait", decision],
                              stdout=subprocess.PIPE, text=True)
    vote(cli, decision, "agent-1", "approve")
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and json.loads(out)["decision"] == "approved"


def test_wait_ends_at_the_decisions_own_deadline(cli, db_path, run):
    setup_swarm(db_path, agents=members(2))
    decision = request(cli, "--type", "majority", "--timeout", "300")
    result = run("--json", "consensus", "wait", decision)
    assert result.returncode == 0 and json.loads(result.stdout)["decision"] == "timeout"


# -- concurrency, determinism, audit ---------------------------------------------------------


def test_concurrent_votes_from_all_members_are_all_counted(db_path):
    n = 8
    setup_swarm(db_path, agents=members(n))
    base = [*gemini_flow_command(), "--db", str(db_path), "--json", "consensus"]
    # threshold 0.99: only a unanimous electorate approves, so no vote closes it early
    opened = subprocess.run([*base, "request", "--swarm", "swarm-1", "--proposal", "p", "--type", "byzantine",
                             "--threshold", "0.99"], capture_output=True, text=True, check=True)
    decision = json.loads(opened.stdout)["decisionId"]

    def one(agent):
        return subprocess.run([*base, "vote", decision, "approve", "--agent", agent], capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, members(n)))
    assert [r.returncode for r in results] == [0] * n, [r.stderr for r in results]
    shown = json.loads(subprocess.run([*base, "show", decision], capture_output=True, text=True).stdout)
    assert shown["decision"] == "approved" and shown["votingData"]["approve"] == n
    assert sorted(d["agent"] for d in shown["votingData"]["details"]) == sorted(members(n))


def test_same_inputs_give_same_outputs(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: 1_700_000_000.0)
    outputs = []
    for name in ("one", "two"):
        path = tmp_path / name / "hive.db"
        setup_swarm(path, agents=members(4), scores={"agent-1": 0.3, "agent-2": 0.6})
        made = cli("consensus", "request", "--swarm", "swarm-1", "--proposal", "p", "--type", "weighted", db=path)
        decision = made.json["decisionId"]
        seq = [
            ("consensus", "vote", decision, "approve", "--agent", "agent-1", "--confidence", "0.7"),
            ("consensus", "vote", decision, "reject", "--agent", "agent-2"),
            ("consensus", "list"),
        ]
        # decision ids are random (unique across databases); everything else is deterministic
        outputs.append([out.replace(decision, "decision-#") for out in
                        [made.stdout, *(cli(*args, db=path).stdout for args in seq)]])
    assert outputs[0] == outputs[1]


def test_request_votes_and_close_are_audited(cli, db_path):
    setup_swarm(db_path, agents=members(1))
    decision = request(cli, "--type", "majority")
    vote(cli, decision, "agent-1", "approve")
    actions = [r[0] for r in query(db_path, "SELECT action FROM audit_log WHERE entity_type = 'consensus' ORDER BY id")]
    assert actions == ["request", "vote", "close"]
