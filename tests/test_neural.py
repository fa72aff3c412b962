"""`neural`: patterns stored with their figures, listed, used, the best one picked, pruned (issue 15)."""

from __future__ import annotations

import pytest

from tests.helpers import T0, sql


def store(cli, *args, data='{"plan": "x"}'):
    result = cli("neural", "store", *args[:1], data, *args[1:])
    assert result.exit_code == 0, result
    return result.json


def test_store_keeps_every_figure_in_the_seed_columns(cli, db_path):
    made = store(cli, "coordination", "--agent-type", "coder", "--domain", "web", "--accuracy", "0.9",
                 "--validation-score", "0.8", "--iterations", "40", "--performance-impact", "0.25")
    assert made["patternType"] == "coordination" and made["data"] == {"plan": "x"}
    assert (made["accuracy"], made["validationScore"], made["trainingIterations"], made["usageCount"],
            made["performanceImpact"]) == (0.9, 0.8, 40, 0, 0.25)
    row = sql(db_path, "SELECT pattern_type, pattern_data, accuracy, training_iterations, agent_type, domain, "
                       "validation_score, usage_count, performance_impact FROM neural_patterns")
    assert row == [("coordination", '{"plan":"x"}', 0.9, 40, "coder", "web", 0.8, 0, 0.25)]
    assert cli("neural", "show", str(made["id"])).json == made


def test_figures_not_given_stay_unknown(cli):
    made = store(cli, "prompt")
    assert made["accuracy"] is None and made["performanceImpact"] is None and made["validationScore"] is None


def test_data_from_a_file_and_from_standard_input(cli, tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"weights": [1, 2]}')
    assert cli("neural", "store", "w", "--file", str(path)).json["data"] == {"weights": [1, 2]}
    assert cli("neural", "store", "w", input='["a"]\n').json["data"] == ["a"]


@pytest.mark.parametrize("args, code", [
    (["t", "{", ], "INVALID_INPUT"),
    (["t", "NaN"], "INVALID_INPUT"),
    (["t", "{}", "--accuracy", "1.5"], "INVALID_INPUT"),
    (["t", "{}", "--accuracy", "-0.1"], "INVALID_INPUT"),
    (["t", "{}", "--validation-score", "2"], "INVALID_INPUT"),
    (["t", "{}", "--iterations", "-1"], "INVALID_INPUT"),
    (["t", "{}", "--agent-type", "wizard"], "INVALID_INPUT"),
    (["t", "{}", "--performance-impact", "inf"], "USAGE"),
    (["", "{}"], "INVALID_INPUT"),
])
def test_bad_input_exits_2_and_writes_nothing(cli, db_path, args, code):
    result = cli("neural", "store", *args)
    assert result.exit_code == 2 and result.error["code"] == code, result
    assert not db_path.exists() or sql(db_path, "SELECT COUNT(*) FROM neural_patterns") == [(0,)]


def test_a_pattern_is_size_limited_like_a_memory_value(cli):
    assert cli("config", "set", "memory.maxValueSize", "1KB").exit_code == 0
    result = cli("neural", "store", "big", '"' + "x" * 2000 + '"')
    assert result.exit_code == 5 and result.error["code"] == "VALUE_TOO_LARGE"


@pytest.mark.parametrize("command", ["show", "use"])
@pytest.mark.parametrize("pattern_id", ["42", "abc", "0", "99999999999999999999999"])
def test_unknown_ids_exit_1(cli, command, pattern_id):
    store(cli, "t")
    result = cli("neural", command, pattern_id)
    assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND"


def test_use_counts_each_use(cli):
    made = store(cli, "t")
    for n in (1, 2, 3):
        assert cli("neural", "use", str(made["id"])).json["usageCount"] == n


def test_list_filters_and_sorts(cli):
    a = store(cli, "coordination", "--agent-type", "coder", "--accuracy", "0.7", "--domain", "web")
    b = store(cli, "coordination", "--agent-type", "tester", "--accuracy", "0.9")
    c = store(cli, "prompt", "--agent-type", "coder")
    ids = lambda r: [p["id"] for p in r.json["patterns"]]  # noqa: E731
    assert ids(cli("neural", "list")) == [b["id"], a["id"], c["id"]]  # no accuracy: last
    assert ids(cli("neural", "list", "--sort-order", "asc")) == [a["id"], b["id"], c["id"]]
    assert ids(cli("neural", "list", "--agent-type", "coder")) == [a["id"], c["id"]]
    assert ids(cli("neural", "list", "--type", "prompt")) == [c["id"]]
    assert ids(cli("neural", "list", "--domain", "web")) == [a["id"]]
    assert ids(cli("neural", "list", "--min-accuracy", "0.8")) == [b["id"]]
    cli("neural", "use", str(c["id"]))
    assert ids(cli("neural", "list", "--sort-by", "usage"))[0] == c["id"]
    for bad in (["--min-accuracy", "1.1"], ["--sort-by", "size"], ["--sort-order", "up"], ["--agent-type", "wizard"]):
        assert cli("neural", "list", *bad).exit_code == 2, bad


def test_best_is_highest_accuracy_then_validation_then_usage(cli):
    low = store(cli, "t", "--agent-type", "coder", "--accuracy", "0.5", "--validation-score", "1")
    tie1 = store(cli, "t", "--agent-type", "coder", "--accuracy", "0.9", "--validation-score", "0.6")
    tie2 = store(cli, "t", "--agent-type", "coder", "--accuracy", "0.9", "--validation-score", "0.6")
    store(cli, "t", "--agent-type", "tester", "--accuracy", "1.0")
    store(cli, "t", "--agent-type", "coder")  # no accuracy: never best
    assert low["id"] != cli("neural", "best", "--agent-type", "coder").json["id"]
    cli("neural", "use", str(tie1["id"]))
    assert cli("neural", "best", "--agent-type", "coder").json["id"] == tie1["id"]
    cli("neural", "use", str(tie2["id"]))
    cli("neural", "use", str(tie2["id"]))
    assert cli("neural", "best", "--agent-type", "coder").json["id"] == tie2["id"]
    better = store(cli, "t", "--agent-type", "coder", "--accuracy", "0.9", "--validation-score", "0.7")
    assert cli("neural", "best", "--agent-type", "coder").json["id"] == better["id"]


def test_best_of_nothing_exits_1(cli):
    store(cli, "t", "--agent-type", "coder")
    result = cli("neural", "best", "--agent-type", "coder")
    assert result.exit_code == 1 and result.error["code"] == "NOT_FOUND"
    assert cli("neural", "best", "--agent-type", "nonsense").exit_code == 2


def test_prune_by_accuracy_and_age(cli, frozen):
    old = store(cli, "t", "--accuracy", "0.2")
    frozen.now = T0 + 40 * 86400
    weak = store(cli, "t", "--accuracy", "0.3")
    unknown = store(cli, "t")
    good = store(cli, "t", "--accuracy", "0.9")
    dry = cli("neural", "prune", "--min-accuracy", "0.5", "--dry-run").json
    assert dry == {"deleted": 2, "ids": [old["id"], weak["id"]], "dryRun": True}
    assert cli("neural", "list").json["total"] == 4
    assert cli("neural", "prune", "--older-than", "30d").json["ids"] == [old["id"]]
    assert cli("neural", "prune", "--min-accuracy", "0.5").json["ids"] == [weak["id"]]
    left = [p["id"] for p in cli("neural", "list").json["patterns"]]
    assert sorted(left) == sorted([unknown["id"], good["id"]])


def test_prune_needs_a_criterion(cli):
    store(cli, "t", "--accuracy", "0.1")
    result = cli("neural", "prune")
    assert result.exit_code == 2 and cli("neural", "list").json["total"] == 1
    assert cli("neural", "prune", "--min-accuracy", "7").exit_code == 2
    assert cli("neural", "prune", "--older-than", "soon").exit_code == 2


def test_writes_are_audited(cli):
    made = store(cli, "t")
    cli("neural", "use", str(made["id"]))
    actions = [e["action"] for e in cli("audit", "list", "--entity", "neural_pattern").json["entries"]]
    assert {"store", "use"} <= set(actions)
