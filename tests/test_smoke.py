def test_store_then_retrieve(cli):
    assert cli("memory", "store", "k", '{"a": 1}').exit_code == 0
    result = cli("memory", "retrieve", "k", "--format", "table")
    assert result.exit_code == 0, result
    assert result.stdout == '{"a": 1}\n'


def test_missing_key_is_json_error(cli):
    result = cli("memory", "retrieve", "nope")
    assert result.exit_code == 1
    assert result.error["code"] == "NOT_FOUND"
