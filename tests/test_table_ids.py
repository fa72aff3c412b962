"""Tables keep ids whole (issue 21): at 60 columns, task/agent/swarm/consensus list show every
id in full; other columns give way and are dropped first."""

from __future__ import annotations

import pytest

import world
from gemini_flow_cli.output import fit_with_whole_ids


@pytest.fixture
def ids(cli, tmp_path):
    return world.build(cli, tmp_path)


@pytest.mark.parametrize("group, keys", [("agent", ("agent", "agent2", "agent3")), ("swarm", ("swarm", "swarm2")),
                                         ("task", ("task", "task2", "task3")), ("consensus", ("decision", "decision2"))])
@pytest.mark.parametrize("width", [60, 40])
def test_list_tables_keep_ids_whole(cli, ids, group, keys, width):
    result = cli(group, "list", "--format", "table", "--no-color", env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert all(len(line) <= width for line in lines), result.stdout
    for key in keys:
        assert ids[key] in result.stdout, f"{ids[key]} is cut at {width} columns:\n{result.stdout}"


def test_other_columns_are_dropped_right_to_left_before_an_id_is_cut():
    columns = ["id", "status", "description", "agentId"]
    cells = [["agent-01m8mxj9m21n2k7x", "running", "x" * 40, "agent-01m8mxj9m21n2k7y"]]
    kept, rows, widths = fit_with_whole_ids(columns, cells, 60)
    assert kept[0] == "id" and "agentId" in kept
    assert widths[kept.index("id")] == 22 and widths[kept.index("agentId")] == 22
    assert sum(widths) + 3 * len(kept) + 1 <= 60
    kept, rows, widths = fit_with_whole_ids(columns, cells, 30)
    assert kept == ["id"] or sum(widths) + 3 * len(kept) + 1 <= 30
