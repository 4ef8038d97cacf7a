"""`make load`'s checks and figures, on made-up answers and audit records: each check finds
what breaks it (`local/load.py`), and the figures file keeps what the other command wrote."""

from __future__ import annotations

import itertools
import json

import pytest

from local.bench_results import write_bench, write_load, write_tokens
from local.load import Answer, AuditCheck, check_findings, percentiles

IDS = ["c-1", "c-2", "c-3"]


def _records(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"correlationId": cid, "outcome": outcome} for cid, outcome in pairs]


def test_one_finished_record_per_2xx_answer_passes():
    check = AuditCheck.of(
        IDS, _records(("c-1", "SUCCEEDED"), ("c-2", "SUCCEEDED"), ("c-3", "FAILED"))
    )
    assert check.findings() == []
    assert check.figures() == {"answers_2xx": 3, "missing": 0, "duplicated": 0, "pending": 0}


def test_a_2xx_answer_without_an_audit_record_is_found():
    check = AuditCheck.of(IDS, _records(("c-1", "SUCCEEDED"), ("c-3", "SUCCEEDED")))
    assert check.findings() == ["1 2xx answers without an audit record (e.g. correlation id c-2)"]
    assert check.figures()["missing"] == 1


def test_a_2xx_answer_with_two_audit_records_is_found():
    records = _records(("c-1", "SUCCEEDED"), ("c-2", "SUCCEEDED"), ("c-2", "SUCCEEDED"))
    check = AuditCheck.of(IDS[:2], records)
    assert check.findings() == [
        "1 2xx answers with more than one audit record (e.g. correlation id c-2)"
    ]
    assert check.figures()["duplicated"] == 1


def test_a_record_left_pending_is_found_whatever_the_answer_was():
    # c-9 answered 500 (not among the 2xx ids), its record still PENDING.
    records = _records(("c-1", "SUCCEEDED"), ("c-9", "PENDING"))
    check = AuditCheck.of(IDS[:1], records)
    assert check.findings() == ["1 audit records left PENDING (e.g. correlation id c-9)"]
    assert check.figures()["pending"] == 1


def test_an_answer_that_is_not_2xx_fails_the_run_before_the_audit_findings():
    answers = [
        Answer("GET", 200, 5.0, "c-1"),
        Answer("PUT", 500, 5.0, "c-2"),
        Answer("PUT", 500, 5.0, "c-3"),
        Answer("GET", 0, 30000.0, "c-4"),
    ]
    audit = AuditCheck.of(["c-1"], _records(("c-1", "SUCCEEDED"), ("c-2", "PENDING")))
    assert check_findings(answers, audit) == [
        "3 answers not 2xx (GET no answer x1, PUT 500 x2)",
        "1 audit records left PENDING (e.g. correlation id c-2)",
    ]
    assert check_findings(answers[:1], AuditCheck.of(["c-1"], _records(("c-1", "SUCCEEDED")))) == []


def test_percentiles_of_few_and_of_many_values():
    assert percentiles([], (50, 99)) == [None, None]
    assert percentiles([7.0], (50, 99)) == [7.0, 7.0]
    # 0 to 100 ms, in any order: the pth percentile is p ms.
    assert percentiles([float(n) for n in range(100, -1, -1)], (50, 95, 99)) == [50, 95, 99]


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["bench", "load", "tokens"])), ids="-".join
)
def test_make_bench_load_and_tokens_keep_each_others_figures(tmp_path, order):
    results = tmp_path / "bench-results.json"
    tokens = {"token_requests_per_lifetime": 1.5, "token_requests": 6}
    writes = {
        "bench": lambda: write_bench({"cold_init_ms": 1}, results),
        "load": lambda: write_load({"concurrency": {}}, results),
        "tokens": lambda: write_tokens(tokens, results),
    }
    for command in order:
        writes[command]()
    others = {"load": {"concurrency": {}}, "token_requests_per_lifetime": 1.5, "tokens": tokens}
    assert json.loads(results.read_text()) == {"cold_init_ms": 1, **others}
    write_bench({"cold_init_ms": 2}, results)  # the bench's own figures are replaced
    assert json.loads(results.read_text()) == {"cold_init_ms": 2, **others}
