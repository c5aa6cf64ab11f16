"""H2O MOJOs read without a JVM (issue 19): GBM (every distribution), DRF (regression,
binomial, binomial double trees, multinomial, and votes tied between classes), Isolation Forest
(with and without its anomaly flag), H2O's XGBoost (every objective, dart and gblinear, sparse
and dense), GLM, Deep Learning, K-Means and Stacked Ensembles scored through DuckDB equal
h2o-genmodel's PredictCsv within 1e-12, labels identical; hostile archives are refused by name.

The fixtures (tests/fixtures/mojo/) were written by tests/fixtures/make_mojo_fixtures.py with
H2O 3.46.0.7: each MOJO and PredictCsv's output over data.csv (numeric and categorical columns,
missing values, a categorical of 40 levels)."""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from byom.errors import InvalidModelError
from byom.formats import detect_format
from byom.scorers import load_scorer
from udfs.duckdb import register, sql

FIXTURES = Path(__file__).parent / "fixtures" / "mojo"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.zip"))
TOLERANCE = 1e-12


def _reference(name: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader((FIXTURES / f"{name}.csv").open()))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    store = register(connection)
    for name in NAMES:
        store.add(name, (FIXTURES / f"{name}.zip").read_bytes())
    types = {"c1": pa.string(), "c2": pa.string()}
    data = pcsv.read_csv(
        FIXTURES / "data.csv", convert_options=pcsv.ConvertOptions(column_types=types)
    )
    connection.register("data_arrow", data.append_column("rid", pa.array(range(data.num_rows))))
    connection.execute("CREATE TABLE data AS SELECT * FROM data_arrow")
    return connection


def test_fixtures_are_there():
    assert len(NAMES) >= 46, f"regenerate with {FIXTURES.parent / 'make_mojo_fixtures.py'}"


@pytest.mark.parametrize("name", NAMES)
def test_duckdb_equals_predict_csv(con, name):
    header, rows = _reference(name)
    got = sql(con, f"SELECT predict('{name}', *) FROM data ORDER BY rid").fetchall()
    assert len(got) == len(rows)
    if header[-1] == "mean_length":  # Isolation Forest: [flag,] score and mean path length
        query = f"SELECT predict_json('{name}', *) FROM data ORDER BY rid"
        reports = [json.loads(r[0]) for r in sql(con, query).fetchall()]
        got_values = np.array([[r[key] for key in header] for r in reports])
        want_values = np.array([[float(x) for x in row] for row in rows])
        assert np.max(np.abs(got_values - want_values)) <= TOLERANCE * np.max(np.abs(want_values))
        return
    if header == ["cluster"]:  # K-Means: the nearest centre
        query = f"SELECT score('{name}', *) FROM data ORDER BY rid"
        assert [r[0] for r in sql(con, query).fetchall()] == [float(r[0]) for r in rows]
        return
    if header == ["predict"]:  # regression
        values = np.array([r[0]["score"] for r in got])
        want = np.array([float(r[0]) for r in rows])
        assert np.max(np.abs(values - want)) <= TOLERANCE * max(1.0, np.max(np.abs(want)))
        return
    assert [r[0]["label"] for r in got] == [row[0] for row in rows]
    # by position: PredictCsv names a numeric response's classes pVal0, pVal1
    probabilities = np.array([list(dict(r[0]["probabilities"]).values()) for r in got])
    want = np.array([[float(x) for x in row[1:]] for row in rows])
    assert np.max(np.abs(probabilities - want)) <= TOLERANCE


def test_sniffed_and_described(con):
    blob = (FIXTURES / "gbm_bernoulli.zip").read_bytes()
    assert detect_format(blob, "m").name == "mojo"
    scorer = load_scorer(blob, "m")
    assert [i.name for i in scorer.inputs] == ["x1", "x2", "x3", "c1", "c2"]
    assert scorer.task == "classification" and scorer.classes == ("no", "yes")
    levels = {i.name: i.categories for i in scorer.inputs}
    assert levels["c1"] == ("blue", "cyan", "green", "magenta", "red")
    assert len(levels["c2"]) == 40
    rows = con.execute("SELECT format FROM byom_models WHERE model_id = 'gbm_bernoulli'")
    assert rows.fetchall() == [("mojo",)]


def test_unseen_level_and_null_are_missing(con):
    """An unseen level is NA, as PredictCsv (genmodel with unknown levels as NA) scores it:
    the same as a NULL."""
    query = (
        "SELECT predict('gbm_multinomial', t) FROM (SELECT 0.5 AS x1, -1.0 AS x2, 0.2 AS x3, "
        "{c1}::VARCHAR AS c1, 'k07' AS c2) t"
    )
    unseen = sql(con, query.format(c1="'purple'")).fetchall()
    null = sql(con, query.format(c1="NULL")).fetchall()
    assert unseen == null
    known = sql(con, query.format(c1="'red'")).fetchall()
    assert known != null  # the level matters here: the test can fail


def test_tied_classes_take_genmodels_draw_not_the_first():
    """drf_ties (two deep trees) splits many votes evenly; genmodel draws among the tied
    classes (a java.util.Random seeded by the row, weighted by the priors), and on some of those
    rows its label is not the first most probable class. byom's labels equal PredictCsv's on
    every row (test_duckdb_equals_predict_csv), so they follow the draw."""
    header, rows = _reference("drf_ties")
    p = np.array([[float(x) for x in row[1:]] for row in rows])
    tied = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    first = np.array(header[1:])[p.argmax(axis=1)]
    labels = np.array([row[0] for row in rows])
    assert tied.sum() >= 20 and (labels[tied] != first[tied]).sum() >= 5


def test_sparse_xgboost_reads_zero_as_missing(con):
    """H2O's sparse XGBoost encoding reads a numeric 0 as missing (as genmodel does), a dense
    one as the number; data.csv's x3 is 0 in every 13th row, so the fixtures cover both."""
    query = (
        "SELECT score('{m}', t) FROM (SELECT x1, x2, {x3} AS x3, c1, c2, rid FROM data) t "
        "ORDER BY rid"
    )
    for name, sparse in (("xgb_binomial", True), ("xgb_numeric", False)):
        zero = sql(con, query.format(m=name, x3="0.0")).fetchall()
        null = sql(con, query.format(m=name, x3="NULL::DOUBLE")).fetchall()
        assert (zero == null) is sparse, name


# ------------------------------------------------------------------------------ hostile MOJOs
def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _entries(name: str = "gbm_bernoulli") -> dict[str, bytes]:
    with zipfile.ZipFile(FIXTURES / f"{name}.zip") as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _refused(blob: bytes, *needles: str) -> None:
    with pytest.raises(InvalidModelError) as info:
        load_scorer(blob, "evil")
    message = str(info.value)
    assert "evil" in message
    for needle in needles:
        assert needle in message, message


def test_entry_outside_the_archive_is_refused():
    _refused(_zip({**_entries(), "../../etc/cron.d/x": b"boom"}), "outside the archive")
    _refused(_zip({**_entries(), "/abs/path": b"boom"}), "outside the archive")


def test_zip_bomb_is_refused_before_unpacking():
    entries = _entries()
    entries["trees/t00_099.bin"] = b"\0" * (1 << 20)
    blob = bytearray(_zip(entries))
    # Forge the entry's declared size (central directory) to 2 GiB: refused before reading.
    name = b"trees/t00_099.bin"
    at = blob.rfind(b"PK\x01\x02", 0, blob.rfind(name))
    struct.pack_into("<I", blob, at + 24, 2 << 30)
    _refused(bytes(blob), "unpack to")


def test_entry_holding_more_than_it_declares_is_refused():
    entries = _entries()
    entries["trees/t00_099.bin"] = b"\0" * 4096
    blob = bytearray(_zip(entries))
    name = b"trees/t00_099.bin"
    at = blob.rfind(b"PK\x01\x02", 0, blob.rfind(name))
    struct.pack_into("<I", blob, at + 24, 16)
    _refused(bytes(blob), "trees/t00_099.bin")


def test_missing_model_ini_is_refused():
    entries = _entries()
    del entries["model.ini"]
    _refused(_zip(entries), "without model.ini")


def test_column_count_mismatch_is_refused():
    entries = _entries()
    entries["model.ini"] = entries["model.ini"].replace(b"n_columns = 6", b"n_columns = 9")
    _refused(_zip(entries), "declares 9 columns but lists 6")


def test_truncated_tree_is_refused():
    entries = _entries()
    entries["trees/t00_003.bin"] = entries["trees/t00_003.bin"][:-3]
    _refused(_zip(entries), "trees/t00_003.bin", "truncated")


def test_node_offset_outside_the_tree_is_refused():
    entries = _entries()
    tree = bytearray(entries["trees/t00_002.bin"])
    assert tree[0] & 0x33 in (0, 1, 2, 3), "the root's left child is a subtree"
    width = (tree[0] & 0x33) + 1
    at = 4 + (4 if tree[0] & 0x0C == 0 else 0)  # after the header and a float split
    tree[at : at + width] = b"\xff" * width
    entries["trees/t00_002.bin"] = bytes(tree)
    _refused(_zip(entries), "trees/t00_002.bin")


def test_split_on_a_column_past_the_features_is_refused():
    entries = _entries()
    tree = bytearray(entries["trees/t00_001.bin"])
    struct.pack_into("<H", tree, 1, 5)  # n_features is 5: column 5 is the response
    entries["trees/t00_001.bin"] = bytes(tree)
    _refused(_zip(entries), "past the features")


def test_not_a_zip_and_other_algorithms_are_refused():
    _refused(b"PK\x03\x04model.ini" + b"\0" * 64, "zip")
    entries = _entries()
    entries["model.ini"] = entries["model.ini"].replace(
        b"algorithm = Gradient Boosting Machine", b"algorithm = Word2Vec"
    )
    _refused(_zip(entries), "Word2Vec")


# ------------------------------------------------------------------ hostile XGBoost boosters
def _first_tree(booster: bytes) -> int:
    """Where the first tree's parameters start in a legacy binary booster: after "binf", the
    learner parameters (136 bytes), the objective and booster names (u64 length + text) and
    the gbtree parameters (160 bytes)."""
    at = 4 + 136
    for _ in range(2):
        (size,) = struct.unpack_from("<q", booster, at)
        at += 8 + size
    return at + 160


def _xgb_entries(change) -> bytes:
    entries = _entries("xgb_binomial")
    booster = bytearray(entries["boosterBytes"])
    change(booster, _first_tree(booster))
    entries["boosterBytes"] = bytes(booster)
    return _zip(entries)


def test_xgboost_truncated_booster_is_refused():
    entries = _entries("xgb_binomial")
    entries["boosterBytes"] = entries["boosterBytes"][:700]
    _refused(_zip(entries), "truncated")


def test_xgboost_node_count_past_the_bytes_or_the_bound_is_refused():
    def past_the_bytes(booster, tree):
        struct.pack_into("<i", booster, tree + 4, 100_000)

    def past_the_bound(booster, tree):
        struct.pack_into("<i", booster, tree + 4, 1 << 28)

    _refused(_xgb_entries(past_the_bytes), "truncated: tree 0 declares 100,000 nodes")
    _refused(_xgb_entries(past_the_bound), "tree 0 takes the model over byom's bound")


def test_xgboost_child_outside_the_tree_is_refused():
    def forge(booster, tree):
        struct.pack_into("<i", booster, tree + 148 + 4, 9999)  # the root's left child

    _refused(_xgb_entries(forge), "boosterBytes tree 0", "is not in the tree")


def test_xgboost_split_on_an_unknown_feature_is_refused():
    def forge(booster, tree):
        struct.pack_into("<I", booster, tree + 148 + 12, 4000)  # the root's feature

    _refused(_xgb_entries(forge), "splits on feature 4000")


def test_xgboost_without_booster_or_with_an_offset_is_refused():
    entries = _entries("xgb_binomial")
    del entries["boosterBytes"]
    _refused(_zip(entries), "no boosterBytes")
    entries = _entries("xgb_binomial")
    ini = entries["model.ini"]
    entries["model.ini"] = ini.replace(b"has_offset = false", b"has_offset = true")
    _refused(_zip(entries), "offset column")
    entries["model.ini"] = ini.replace(b"cat_offsets = [0, 41, 47]", b"cat_offsets = [0, 47, 41]")
    _refused(_zip(entries), "cat_offsets")
