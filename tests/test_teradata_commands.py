"""Every SCRIPT_COMMAND byom generates runs as the server runs it: the exact text through
`sh -c`, from a folder where ./mydb/ holds the deployed files, and scores exactly as DuckDB.

The cases cross what used to break a shell or get cut short: a column name with a blank, types
with lengths (`DECIMAL(10,2)`, `VARCHAR(20)`), a multi-tensor input map (`a=..;b=..`), the `;`,
`|` and `,` delimiters, QUOTECHAR `"`, inline and file delivery, one model or a model column.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from helpers import EXACT, IRIS_FEATURES, assert_close
from teradata_server import DATABASE, command_args, deployed, run_script, teradata_float

from byom.formats import sha256_hex
from byom.scorers import load_scorer
from udfs.duckdb import register
from udfs.teradata.script import parse_columns
from udfs.teradata.sql import ScriptQuery, model_file_name

AMPS = 3
FEATURES = ["sepal length", *IRIS_FEATURES[1:]]  # a name that needs quotes
COLUMNS = (
    'id INTEGER, model_id VARCHAR(10), "sepal length" FLOAT, sepal_width FLOAT, '
    "petal_length FLOAT, petal_width FLOAT, amount DECIMAL(10,2), note VARCHAR(20)"
)


def _two_tensor_onnx() -> bytes:
    """A regression with two tensor inputs, `num` [n, 2] and `extra` [n, 1]: y = num.w + 3e."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["num", "w"], ["nw"]),
            helper.make_node("Mul", ["extra", "three"], ["e3"]),
            helper.make_node("Add", ["nw", "e3"], ["y"]),
        ],
        "two_tensors",
        [
            helper.make_tensor_value_info("num", TensorProto.DOUBLE, [None, 2]),
            helper.make_tensor_value_info("extra", TensorProto.DOUBLE, [None, 1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
        initializer=[
            helper.make_tensor("w", TensorProto.DOUBLE, [2, 1], [0.5, -2.0]),
            helper.make_tensor("three", TensorProto.DOUBLE, [1], [3.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture(scope="module")
def models(iris_logreg, iris_binary_onnx) -> dict[str, tuple[bytes, str]]:
    """Model id -> (bytes, input map)."""
    iris_map = ",".join(FEATURES)
    return {
        "multi": (iris_logreg[1], iris_map),
        "binary": (iris_binary_onnx[1], iris_map),
        "two": (_two_tensor_onnx(), "num=sepal length,sepal_width;extra=amount"),
    }


@pytest.fixture(scope="module")
def rows(iris) -> pa.Table:
    """The ON query's rows: iris values (some NULL), an amount, a note with every delimiter
    and a quote, and each row's model among multi and binary."""
    n = 90
    rng = np.random.default_rng(5)
    base = iris.sample(n, replace=True, random_state=9).reset_index(drop=True)
    values = {f: base[c].to_numpy() for f, c in zip(FEATURES, IRIS_FEATURES, strict=True)}
    values["petal_width"] = np.where(rng.random(n) < 0.1, np.nan, values["petal_width"])
    return pa.table(
        {
            "id": pa.array(range(n), pa.int32()),
            "model_id": pa.array(rng.choice(["multi", "binary"], n)),
            **{f: pa.array(v, from_pandas=True) for f, v in values.items()},
            "amount": pa.array(np.round(rng.uniform(-50, 50, n), 2)),
            "note": pa.array([f'a;b|c,d"e\t{i}' for i in range(n)]),
        }
    )


def _duckdb_scores(models, rows: pa.Table, model_ids: list[str]) -> dict[int, float]:
    con = duckdb.connect()
    store = register(con)
    for model_id in model_ids:
        blob, inputs = models[model_id]
        store.add(model_id, blob, inputs=inputs or None)
    con.register("input_rows", rows)
    con.execute("CREATE TABLE t AS SELECT * FROM input_rows")
    key = "model_id" if len(model_ids) > 1 else f"'{model_ids[0]}'"
    got = con.execute(f"SELECT id, score({key}, t) FROM t").fetchall()
    return dict(got)


def _with_inline_columns(rows: pa.Table, model_column: str | None) -> pa.Table:
    """The columns the inline ON query adds: byom_part (a bucket per AMP) and byom_row (the
    row's place in its partition, by the partition key)."""
    ids = rows["id"].to_pylist()
    parts = [i % AMPS for i in ids]
    keys = rows[model_column].to_pylist() if model_column else [None] * len(ids)
    order: dict[tuple, list[int]] = {}
    for i in sorted(range(len(ids)), key=lambda i: ids[i]):
        order.setdefault((keys[i], parts[i]), []).append(i)
    numbers = [0] * len(ids)
    for members in order.values():
        for rank, i in enumerate(members, 1):
            numbers[i] = rank
    rows = rows.append_column("byom_part", pa.array(parts, pa.int32()))
    return rows.append_column("byom_row", pa.array(numbers, pa.int64()))


CASES = {
    "inline-model-id-tab": dict(model_id="multi", delimiter="\t"),
    "inline-model-column-semicolon-quoted": dict(
        model_column="model_id", delimiter=";", quotechar='"'
    ),
    "file-model-column-pipe": dict(model_column="model_id", delivery="file", delimiter="|"),
    "file-model-id-comma-quoted": dict(
        model_id="binary", delivery="file", delimiter=",", quotechar='"'
    ),
    "inline-two-tensors-semicolon": dict(model_id="two", delimiter=";"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_command_runs_through_a_shell_and_scores_as_duckdb(case, models, rows):
    settings = dict(CASES[case])
    model_ids = [settings["model_id"]] if "model_id" in settings else ["multi", "binary"]
    quoted = settings.get("quotechar") is not None
    table = rows if quoted else rows.drop_columns(["note"])  # a bare delimiter splits a row
    columns = parse_columns(COLUMNS if quoted else COLUMNS.rsplit(", note", 1)[0])
    for model_id in model_ids:  # file delivery: the files `byom teradata deploy` installs
        path = deployed() / DATABASE / model_file_name(sha256_hex(models[model_id][0]))
        path.write_bytes(models[model_id][0])
    query = ScriptQuery(
        table="customers",
        columns=columns,
        database=DATABASE,
        models={m: load_scorer(models[m][0], m) for m in model_ids},
        accumulate=["id", *(["note"] if quoted else [])],
        outputs=["score"],
        inputs=models[model_ids[0]][1],
        model_shas={m: sha256_hex(models[m][0]) for m in model_ids},
        **settings,
    )
    command = query.command()
    assert command.startswith(f"OPENBLAS_NUM_THREADS=1 tdpython3 ./{DATABASE}/byom_score.py ")
    inline = query.delivery == "inline"
    model_column = settings.get("model_column")
    if inline:
        table = _with_inline_columns(table, model_column)
    got = run_script(
        table,
        command_args(command),
        query.returns(),
        amps=AMPS,
        partition_by=[*([model_column] if model_column else []), "byom_part"] if inline else None,
        order_by="byom_row" if inline else None,
        model_data={m: models[m][0] for m in model_ids} if inline else None,
        delimiter=query.delimiter,
        quotechar=query.quotechar,
        command=command,
    )
    want = _duckdb_scores(models, rows, model_ids)
    ids = got["id"].to_pylist()
    assert sorted(ids) == list(range(rows.num_rows))
    assert_close(got["score"].to_pylist(), [want[i] for i in ids], EXACT)
    if quoted:
        assert got["note"].to_pylist() == [rows["note"][i].as_py() for i in ids]


def test_split_points_reach_the_script_exactly(tmp_path):
    """A value at a tree's split point scores as in DuckDB with the 17-digit FLOAT text the
    generated ON query casts to; Teradata's default 15 digits would move it across the split."""
    threshold = 0.1 + 0.2  # 0.30000000000000004: not a 15-digit decimal
    tree = f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <TreeModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Node score="0"><True/>
      <Node score="1"><SimplePredicate field="x" operator="lessThan" value="{threshold!r}"/></Node>
      <Node score="2"><True/></Node>
    </Node>
  </TreeModel>
</PMML>""".encode()
    on_query = ScriptQuery(
        table="t",
        columns=parse_columns("id INTEGER, x FLOAT"),
        database=DATABASE,
        models={"tree": load_scorer(tree, "tree")},
        model_id="tree",
        delivery="file",
        model_shas={"tree": sha256_hex(tree)},
    ).on_query()
    assert "CAST(CAST(t.x AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32))" in on_query
    values = [threshold, 0.3, 0.30000000000000009, 0.29999999999999999]
    rows = pa.table({"id": pa.array(range(4), pa.int32()), "x": pa.array(values)})
    (deployed() / DATABASE / model_file_name(sha256_hex(tree))).write_bytes(tree)
    args = ["--model-id", "tree", "--outputs", "score"]
    args += ["--model-file", f"tree=./{DATABASE}/{model_file_name(sha256_hex(tree))}"]
    got = run_script(rows, [*args, "--accumulate", "id"], [("id", "INTEGER"), ("score", "FLOAT")])
    con = duckdb.connect()
    register(con).add("tree", tree)
    want = con.execute("SELECT score('tree', x) FROM (SELECT unnest(?) AS x)", [values]).fetchall()
    by_id = dict(zip(got["id"].to_pylist(), got["score"].to_pylist(), strict=True))
    assert [by_id[i] for i in range(4)] == [w[0] for w in want] == [2.0, 1.0, 2.0, 1.0]
    fifteen = float(f"{threshold:.14E}")  # what the default FLOAT text would carry
    assert fifteen != threshold and fifteen < threshold  # it would land on the other side
    assert float(teradata_float(threshold).replace(" ", "")) == threshold
