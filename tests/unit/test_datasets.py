"""Suites whose cases come from data files: every format loads the same cases, samples are seeded, and a
bad row is named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness.errors import ConfigError
from evalharness.suites import load_suite

ROWS = [{"ticket_id": f"t{i}", "question": f"Where is order {i}?", "deadline": f"{i} days", "category": "orders"}
        for i in range(1, 7)]
SUITE = """name: support
dataset: {{path: {path}}}
case:
  id: "{{{{ row.ticket_id }}}}"
  prompt: "Answer the customer: {{{{ row.question }}}}"
  expect: {{judge: "The answer gives the refund deadline of {{{{ row.deadline }}}}."}}
  tags: ["{{{{ row.category }}}}"]
{extra}"""


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def suite_for(tmp_path: Path, data: str, extra: str = "") -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(path=data, extra=extra), encoding="utf-8")
    return path


def test_jsonl_rows_become_cases_with_rendered_prompt_rubric_and_tags(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "tickets.jsonl", ROWS)
    suite = load_suite(suite_for(tmp_path, "tickets.jsonl"))
    assert [c.id for c in suite.cases] == [r["ticket_id"] for r in ROWS]
    assert suite.messages["t2"] == [{"role": "user", "content": "Answer the customer: Where is order 2?"}]
    first = suite.cases[0]
    assert first.expect is not None and first.expect.judge == "The answer gives the refund deadline of 1 days."
    assert first.tags == ["orders"]


def test_row_text_is_sent_as_it_is_never_rendered_twice(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t.jsonl", [{**ROWS[0], "question": "What does {{ x }} mean?"}])
    suite = load_suite(suite_for(tmp_path, "t.jsonl"))
    assert suite.messages["t1"][0]["content"] == "Answer the customer: What does {{ x }} mean?"


def test_csv_parquet_and_a_saved_dataset_give_the_same_cases(tmp_path: Path) -> None:
    import csv

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    with (tmp_path / "t.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "t.parquet")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    write_jsonl(tmp_path / "t.jsonl", ROWS)
    loaded = {}
    for name in ("t.jsonl", "t.csv", "t.parquet", "saved"):
        (tmp_path / f"s-{name}").mkdir()
        suite = load_suite(suite_for(tmp_path / f"s-{name}", f"../{name}"))
        loaded[name] = (suite.messages, [c.expect for c in suite.cases])
    assert loaded["t.csv"] == loaded["t.jsonl"] == loaded["t.parquet"] == loaded["saved"]


def test_a_sample_is_seeded_in_file_order_and_the_same_for_every_format(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{**ROWS[0], "ticket_id": f"t{i}"} for i in range(50)]
    write_jsonl(tmp_path / "t.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    ids = [c.id for c in load_suite(suite_for(tmp_path, "t.jsonl", "sample: {n: 5, seed: 1}\n")).cases]
    assert len(ids) == 5 and ids == sorted(ids, key=lambda i: int(i[1:]))
    assert ids == [c.id for c in load_suite(suite_for(tmp_path, "t.jsonl", "sample: {n: 5, seed: 1}\n")).cases]
    assert ids == [c.id for c in load_suite(suite_for(tmp_path, "t.parquet", "sample: {n: 5, seed: 1}\n")).cases]
    assert ids != [c.id for c in load_suite(suite_for(tmp_path, "t.jsonl", "sample: {n: 5, seed: 2}\n")).cases]


def test_a_row_missing_a_field_names_the_file_and_its_line(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1], {k: v for k, v in ROWS[2].items() if k != "deadline"}]
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n")
    with pytest.raises(ConfigError) as err:
        load_suite(suite_for(tmp_path, "t.jsonl"))
    assert err.value.file == str(path) and err.value.line == 4  # the blank line counts
    assert err.value.key == "case.expect.judge" and "deadline" in err.value.message


def test_a_broken_csv_row_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("ticket_id,question,deadline,category\nt1,q,d,c\nt2,bad id?,d,c\n")
    path = tmp_path / "suite.yaml"
    path.write_text('name: s\ndataset: {path: t.csv}\ncase: {id: "{{ row.question }}", prompt: "{{ row.question }}"}\n')
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert err.value.line == 3 and err.value.key == "case.id" and "'bad id?'" in err.value.message


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t.jsonl", [ROWS[0], ROWS[1], ROWS[0]])
    with pytest.raises(ConfigError) as err:
        load_suite(suite_for(tmp_path, "t.jsonl"))
    assert "t.jsonl line 1 and t.jsonl line 3" in err.value.message


def test_unparsable_json_line_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(ConfigError) as err:
        load_suite(suite_for(tmp_path, "t.jsonl"))
    assert err.value.line == 2
    with pytest.raises(ConfigError, match="data file not found"):
        load_suite(suite_for(tmp_path, "nope.jsonl"))


def test_a_missing_optional_reader_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    with pytest.raises(ConfigError) as err:
        load_suite(suite_for(tmp_path, "t.parquet"))
    assert "evalharness[parquet]" in str(err.value)


def test_cases_and_dataset_together_are_refused(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t.jsonl", ROWS)
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\ndataset: {path: t.jsonl}\ncases: [{id: a, prompt: hi}]\ncase: {id: x, prompt: y}\n")
    with pytest.raises(ConfigError, match="not both"):
        load_suite(path)


def test_validate_names_the_broken_row_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evalharness.cli import main

    (tmp_path / "t.csv").write_text("ticket_id,question,deadline,category\nt1,q,d,c\nt2,q,d,c\n")
    (tmp_path / "suite.yaml").write_text(
        'name: s\ndataset: {path: t.csv}\ncase: {id: "{{ row.ticket_id }}", prompt: "{{ row.missing }}"}\n')
    (tmp_path / "config.yaml").write_text("name: c\ntarget: {kind: local}\nsuites: [suite.yaml]\n")
    assert main(["validate", str(tmp_path / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 't.csv'}:2: case.prompt: t.csv line 2: template error:" in err and "missing" in err
