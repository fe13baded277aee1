"""The validation gate on a corruption corpus made from the real MovieLens-100K and Open Bandit files.

Each corruption must be rejected by the rule it breaks (and by no other); clean data must pass.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recause.config import DriftParams, ValidateParams
from recause.data.schemas import Tables
from recause.errors import InputDataError
from recause.validation.drift import drift
from recause.validation.files import table_from_bytes
from recause.validation.gate import TableCheck, check_table, verdict
from recause.validation.runner import GreatExpectations

NOW = int(time.time())
PARAMS = ValidateParams()


@pytest.fixture(scope="module")
def runner() -> GreatExpectations:
    return GreatExpectations()


@pytest.fixture(scope="module")
def references(ml100k: Tables) -> dict[str, list[str]]:
    return {"user_id": ml100k.users["user_id"].tolist(), "item_id": ml100k.items["item_id"].tolist()}


def _check(runner: GreatExpectations, table: str, frame: pd.DataFrame, references=None, params=PARAMS) -> TableCheck:
    return check_table(table, frame, f"{table}.parquet", params, NOW, runner, references)


def _broken_rules(check: TableCheck) -> set[str]:
    return {rule for rules in check.rejected["broken_rules"] for rule in rules.split("; ")}


# -- clean data passes ------------------------------------------------------------------------


def test_clean_movielens_and_bandit_logs_pass(runner, ml100k: Tables, references, open_bandit_random: Path) -> None:
    for table in ("users", "items"):
        check = _check(runner, table, getattr(ml100k, table))
        assert check.success, check.failures
    check = _check(runner, "interactions", ml100k.interactions, references)
    assert check.success and len(check.accepted) == 100_000 and check.rejected.empty
    bandit = table_from_bytes("bandit", open_bandit_random.read_bytes(), open_bandit_random.name)
    check = _check(runner, "bandit", bandit)
    assert check.success and len(check.accepted) == 10_000


# -- files that cannot be parsed fail before Great Expectations runs ------------------------


def _corrupt_file(raw: bytes, how: str) -> bytes:
    lines = raw.split(b"\n")
    if how == "missing_column":
        return b"\n".join(b"\t".join(line.split(b"\t")[:2] + line.split(b"\t")[3:]) for line in lines)
    if how == "empty":
        return b""
    if how == "wrong_delimiter":
        return raw.replace(b"\t", b";")
    if how == "non_utf8":
        lines[57] = lines[57].replace(b"\t", b"\t\xff", 1)
        return b"\n".join(lines)
    if how == "truncated":
        return raw[: raw.rfind(b"\t", 0, len(raw) // 2)]
    raise ValueError(how)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing_column", r"ml-100k\.inter: missing column\(s\) rating; found user_id, item_id, timestamp"),
        ("empty", r"ml-100k\.inter: file is empty"),
        ("wrong_delimiter", r"missing column\(s\) .*is the delimiter ';' rather than tab\?"),
        ("non_utf8", r"ml-100k\.inter: not UTF-8 text: byte 0xff at line 58, column \d+"),
        ("truncated", r"ml-100k\.inter: line \d+ has \d of 4 fields and no line end: the file looks truncated"),
    ],
)
def test_unparseable_files_fail_with_a_message_that_says_where(
    ml100k_raw: dict[str, Path], how: str, message: str
) -> None:
    broken = _corrupt_file(ml100k_raw["interactions"].read_bytes(), how)
    with pytest.raises(InputDataError, match=message):
        table_from_bytes("interactions", broken, "ml-100k.inter")


# -- row-level corruptions are rejected by exactly the rule they break ----------------------


def _rows(frame: pd.DataFrame, n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(frame), size=n, replace=False)


def test_wrong_dtype(runner, ml100k: Tables, references) -> None:
    frame = ml100k.interactions.astype({"rating": object})
    frame.loc[_rows(frame), "rating"] = "five"
    check = _check(runner, "interactions", frame, references)
    assert _broken_rules(check) == {"rating is a number"} and len(check.rejected) == 7
    assert check.failures == [
        "interactions.parquet: column 'rating': rule 'rating is a number' broken by 7 row(s); "
        "e.g. ['five', 'five', 'five', 'five', 'five']"
    ]


@pytest.mark.parametrize(
    ("corrupt", "rule"),
    [
        (lambda f, r: f.assign(user_id=f["user_id"].where(~f.index.isin(r), None)), "user_id present"),
        (lambda f, r: f.assign(rating=f["rating"].where(~f.index.isin(r), 7.0)), "rating within [1, 5]"),
        (
            lambda f, r: f.assign(item_id=f["item_id"].where(~f.index.isin(r), "no-such-item")),
            "item_id exists in items",
        ),
        (
            lambda f, r: f.assign(timestamp=f["timestamp"].where(~f.index.isin(r), NOW + 30 * 86_400)),
            "timestamp within [1990-01-01, now] (not in the future)",
        ),
    ],
    ids=["null_user_id", "rating_out_of_range", "unknown_item", "future_timestamp"],
)
def test_row_corruptions(runner, ml100k: Tables, references, corrupt, rule: str) -> None:
    rows = _rows(ml100k.interactions)
    check = _check(runner, "interactions", corrupt(ml100k.interactions, rows), references)
    assert not check.success
    assert _broken_rules(check) == {rule}
    assert sorted(check.rejected["row"]) == sorted(rows)
    assert len(check.accepted) + len(check.rejected) == 100_000


def test_duplicate_events(runner, ml100k: Tables, references) -> None:
    frame = pd.concat([ml100k.interactions, ml100k.interactions.iloc[_rows(ml100k.interactions, 3)]])
    check = _check(runner, "interactions", frame, references)
    assert _broken_rules(check) == {"no duplicate (user_id, item_id, timestamp) rows"}
    assert len(check.rejected) == 6  # both copies of each duplicated event


def test_empty_item_text(runner, ml100k: Tables) -> None:
    items = ml100k.items.copy()
    items.loc[_rows(items, 4), "text"] = ""
    check = _check(runner, "items", items)
    assert _broken_rules(check) == {"item text of 1..2000 characters"} and len(check.rejected) == 4


@pytest.mark.parametrize(("value", "count"), [(0.0, 5), (1.5, 5)])
def test_bandit_propensity_outside_zero_one(runner, open_bandit_random: Path, value: float, count: int) -> None:
    frame = table_from_bytes("bandit", open_bandit_random.read_bytes(), open_bandit_random.name)
    frame.loc[_rows(frame, count), "propensity_score"] = value
    check = _check(runner, "bandit", frame)
    assert _broken_rules(check) == {"propensity in (0, 1]"} and len(check.rejected) == count


def test_row_count_bounds_are_table_level(runner, ml100k: Tables) -> None:
    params = ValidateParams(row_counts={"users": {"min": 1000}})
    check = _check(runner, "users", ml100k.users, params=params)
    assert check.table_level_failures == ["users.parquet: rule 'row count within [1000, any]' broken (observed 943)"]
    assert check.rejected.empty  # nothing to quarantine: the table as a whole is wrong


def test_quarantine_splits_every_row_into_accepted_or_rejected(runner, ml100k: Tables, references) -> None:
    frame = ml100k.interactions.copy()
    frame.loc[_rows(frame, 11, seed=1), "rating"] = 0.0
    frame.loc[_rows(frame, 5, seed=2), "item_id"] = "ghost"
    check = _check(runner, "interactions", frame, references)
    assert len(check.accepted) + len(check.rejected) == len(frame)
    assert check.summary(quarantined=True) == {
        "success": False,
        "evaluated": 100_000,
        "failed": len(check.rejected),
        "quarantined": len(check.rejected),
    }
    assert 11 <= len(check.rejected) <= 16 and check.accepted["rating"].between(1, 5).all()
    assert check.accepted["rating"].dtype == "float32" and check.accepted["timestamp"].dtype == "int64"


# -- drift ------------------------------------------------------------------------------------


def test_drift_breach_when_ratings_shift_by_two(ml100k: Tables) -> None:
    shifted = ml100k.interactions.assign(rating=(ml100k.interactions["rating"] + 2).clip(upper=5))
    report = drift("interactions", shifted, ml100k.interactions, DriftParams())
    assert report.measures["psi_rating"] > 1.0
    assert report.breaches == [f"rating distribution shifted: PSI {report.measures['psi_rating']:.3f} (limit 0.2)"]
    same = drift("interactions", ml100k.interactions, ml100k.interactions, DriftParams())
    assert same.breaches == [] and same.measures == {"new_user_share": 0.0, "new_item_share": 0.0, "psi_rating": 0.0}


def test_drift_counts_new_users(ml100k: Tables) -> None:
    users = ml100k.interactions["user_id"].unique()
    old = ml100k.interactions[ml100k.interactions["user_id"].isin(users[:300])]
    report = drift("interactions", ml100k.interactions, old, DriftParams(max_new_user_share=0.5))
    assert report.measures["new_user_share"] == pytest.approx((len(users) - 300) / len(users), abs=1e-6)
    assert any("of user_id values are new" in b for b in report.breaches)


def test_verdict_blocks_per_mode_and_drift_policy(runner, ml100k: Tables, references) -> None:
    frame = ml100k.interactions.assign(
        rating=ml100k.interactions["rating"].where(ml100k.interactions.index % 500 != 0, 9.0)
    )
    rows_broken = {"interactions": _check(runner, "interactions", frame, references)}
    shifted = drift("interactions", frame.assign(rating=5.0), ml100k.interactions, DriftParams())
    assert shifted.breaches

    blocking, warnings = verdict(rows_broken, [shifted], ValidateParams(mode="fail"))
    assert blocking[0].startswith(
        "interactions.parquet: column 'rating': rule 'rating within [1, 5]' broken by 200 row(s)"
    )
    assert blocking[-1].startswith("interactions: drift: rating distribution shifted") and warnings == []

    quarantine = ValidateParams(mode="quarantine", drift=DriftParams(on_breach="warn"))
    blocking, warnings = verdict(rows_broken, [shifted], quarantine)
    assert blocking == [] and len(warnings) == 1  # bad rows are set apart; drift only warns

    table_wrong = {
        "users": _check(runner, "users", ml100k.users, params=ValidateParams(row_counts={"users": {"min": 10_000}}))
    }
    blocking, _ = verdict(table_wrong, [], ValidateParams(mode="quarantine"))
    assert len(blocking) == 1 and "row count" in blocking[0]  # a wrong table cannot be quarantined


# -- the online intake's pandas runner agrees with Great Expectations ------------------------------------


def _corrupted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A sample of the real table with one broken row per rule the table has (types first: text columns)."""
    sample = frame.sample(200, random_state=0).reset_index(drop=True).astype(object)
    broken = {
        "interactions": [
            ("rating", 9.0),
            ("rating", None),
            ("timestamp", NOW + 10 * 86_400),
            ("item_id", "no-such-item"),
            ("user_id", "no-such-user"),
            ("timestamp", "not a number"),
        ],
        "users": [("age", 150), ("age", "old"), ("user_id", None)],
        "items": [("year", 1700), ("text", ""), ("title", None)],
    }[table]
    for row, (column, value) in enumerate(broken):
        sample.at[row, column] = value
    sample.loc[len(sample)] = sample.loc[len(broken) + 1]  # a duplicate key / duplicate row
    return sample


@pytest.mark.parametrize("table", ["interactions", "users", "items"])
def test_pandas_rows_runner_rejects_what_great_expectations_rejects(runner, ml100k: Tables, references, table) -> None:
    from recause.validation.rows import PandasRows

    frame = _corrupted(getattr(ml100k, table), table)
    refs = references if table == "interactions" else None
    by_gx, by_pandas = _check(runner, table, frame, refs), _check(PandasRows(), table, frame, refs)
    assert not by_gx.success and len(by_gx.rejected) >= 4
    assert by_pandas.rejected.to_dict("records") == by_gx.rejected.to_dict("records")
    pd.testing.assert_frame_equal(by_pandas.accepted, by_gx.accepted)
