"""The SQL `byom teradata` prints: teradataml's own layout, ON queries Teradata's dialect parses,
install calls as teradataml spells them, and a core bundle the script really imports from."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections import OrderedDict

import pytest
import sqlglot
from helpers import IRIS_FEATURES, LINEAR_PMML

from byom.errors import ByomError
from byom.formats import sha256_hex
from byom.scorers import load_scorer
from udfs.teradata import deploy
from udfs.teradata.script import parse_columns
from udfs.teradata.sql import ScriptQuery, install_statements

COLUMNS = "id INTEGER, model_id VARCHAR(30), " + ", ".join(f"{c} FLOAT" for c in IRIS_FEATURES)


def teradataml_sql(query: ScriptQuery) -> str:
    """The same query from teradataml's Script query generator, run without a connection."""
    import teradataml as tdml
    from teradataml.common.utils import UtilFuncs
    from teradataml.table_operators.table_operator_query_generator import (
        TableOperatorQueryGenerator,
    )
    from teradatasqlalchemy import BIGINT, FLOAT, INTEGER, VARCHAR
    from teradatasqlalchemy.dialect import dialect as td_dialect

    types_ = {"INTEGER": INTEGER(), "FLOAT": FLOAT(), "BIGINT": BIGINT()}

    def td_type(text: str):
        m = re.fullmatch(r"VARCHAR\((\d+)\)", text)
        return VARCHAR(int(m.group(1))) if m else types_[text]

    def quoted(value: str) -> str:
        return UtilFuncs._teradata_collapse_arglist(value.replace("'", "''"), "'")

    returns = OrderedDict((n, td_type(t)) for n, t in query.returns())
    names = ["SCRIPT_COMMAND", "delimiter", "returns"]
    values = [
        quoted(query.command()),
        quoted(query.delimiter),
        quoted(", ".join(f"{k} {t.compile(td_dialect())}" for k, t in returns.items())),
    ]
    if query.charset:
        names.append("charset")
        values.append(quoted(query.charset))
    if query.quotechar:
        names.append("quotechar")
        values.append(quoted(query.quotechar))
    dist, order = query.distribution()
    keys = None if dist == "PARTITION BY ANY" else re.findall(r'"([^"]+)"', dist)
    generator = TableOperatorQueryGenerator(
        "Script",
        ["input"],
        [f"({query.on_query()})"],
        ["TABLE"],
        ["FACT"],
        [UtilFuncs._teradata_collapse_arglist(keys, '"') if keys else None],
        [UtilFuncs._teradata_collapse_arglist(order, '"') if order else "NA_character_"],
        names,
        values,
        ["STRING"] * len(names),
        [],
        [],
        func_input_order_by_type=[None],
        func_input_sort_ascending=True,
        func_input_nulls_first=True if order else None,
        engine="ENGINE_SQL",
        data=None,
        ctx=types.SimpleNamespace(configure=tdml.configure),
    )
    return generator._gen_table_operator_select_stmt_sql()


def squash(sql: str) -> str:
    return " ".join(sql.split())


@pytest.fixture(scope="module")
def scorers(iris_logreg):
    return {
        "iris": load_scorer(iris_logreg[1], "iris"),
        "lin": load_scorer(LINEAR_PMML, "lin"),
    }


CASES = {
    "inline-one-model": dict(model_id="iris", accumulate=["id"]),
    "inline-model-column": dict(
        model_column="model_id", accumulate=["id", "model_id"], quotechar='"', charset="LATIN"
    ),
    "file-delivery": dict(
        model_id="iris", delivery="file", outputs=["score", "prob_2", "label"], inputs="a,b,c,d"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_query_matches_teradataml_and_parses(case, scorers, iris_logreg):
    query = ScriptQuery(
        table="customers",
        columns=parse_columns(COLUMNS),
        database="mydb",
        models=scorers,
        model_shas={"iris": sha256_hex(iris_logreg[1])},
        **CASES[case],
    )
    from teradataml.common.constants import TableOperatorConstants

    prefix = TableOperatorConstants.OPENBLAS_NUM_THREADS.value + " "
    assert query.command().startswith(prefix)  # teradataml's Script adds the same prefix
    ours = query.sql(set_session=False)
    assert squash(ours) == squash(teradataml_sql(query))
    assert query.sql() == f"SET SESSION SEARCHUIFDBPATH = mydb;\n{ours}"
    on = sqlglot.parse_one(query.on_query(), read="teradata")  # raises on a syntax error
    assert isinstance(on, sqlglot.exp.Select)
    assert [c.alias_or_name for c in on.selects][-1] == (
        "byom_model" if query.delivery == "inline" else "petal_width"
    )


def test_returns_follow_the_models(scorers):
    def returns(**kw):
        q = ScriptQuery(
            table="t", columns=parse_columns(COLUMNS), database="db", models=scorers, **kw
        )
        return q.returns()

    assert returns(model_id="iris", accumulate=["id"]) == [
        ("id", "INTEGER"),
        ("prediction", "VARCHAR(256)"),
        ("json_report", "VARCHAR(32000)"),
    ]
    regression = {"lin": scorers["lin"]}
    q = ScriptQuery(
        table="t", columns=parse_columns(COLUMNS), database="db", models=regression, model_id="lin"
    )
    assert q.returns()[0] == ("prediction", "FLOAT")
    assert returns(model_id="iris", outputs=["score", "prob_1"]) == [
        ("score", "FLOAT"),
        ("prob_1", "FLOAT"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(accumulate=["idd"]), "column 'idd' is not among the input columns"),
        (dict(outputs=["proba"]), "unknown output 'proba'"),
        (dict(model_id="nope"), "model 'nope' is not among the models given"),
        (dict(delivery="dimension"), "unknown delivery"),
    ],
)
def test_bad_query_settings_are_refused(scorers, change, message):
    settings = dict(model_id="iris") | change
    with pytest.raises(ByomError, match=message):
        ScriptQuery(
            table="t", columns=parse_columns(COLUMNS), database="db", models=scorers, **settings
        )


def test_install_calls_are_spelled_like_teradataml(tmp_path):
    from sqlalchemy import func
    from teradatasqlalchemy.dialect import dialect as td_dialect

    files = [("byom_score", "/x/byom_score.py", False), ("byom_core", "/x/byom_core.zip", True)]
    ours = install_statements("mydb", files)
    assert ours[:2] == ["DATABASE mydb", "SET SESSION SEARCHUIFDBPATH = mydb"]
    compile_kw = dict(dialect=td_dialect(), compile_kwargs={"literal_binds": True})
    for (file_id, path, binary), statement in zip(files, ours[2:], strict=True):
        arg = ("cb!" if binary else "cz!") + path
        call = func.SYSUIF.install_file(file_id, path.rsplit("/", 1)[1], arg)
        assert statement == f"call {call.compile(**compile_kw)}"
    replaced = install_statements("mydb", files[:1], replace=True)[2]
    call = func.SYSUIF.replace_file("byom_score", "byom_score.py", "cz!/x/byom_score.py", 1)
    assert replaced == f"call {call.compile(**compile_kw)}"


def test_bundle_runs_from_its_zip(tmp_path, iris_logreg):
    """byom_score.py imports the core from byom_core.zip beside it, not from this checkout."""
    blobs = {"iris": iris_logreg[1]}
    plan = deploy.plan("mydb", tmp_path / "mydb", blobs)
    model_file = tmp_path / "mydb" / f"byom_{sha256_hex(iris_logreg[1])[:16]}"
    assert model_file.read_bytes() == iris_logreg[1]
    assert [f[0] for f in plan.files][:2] == ["byom_score", "byom_core"]
    probe = (
        "import runpy, sys; sys.argv = ['byom_score.py']; "
        "sys.modules.pop('udfs', None); "
        f"runpy.run_path({str(tmp_path / 'mydb' / 'byom_score.py')!r}, run_name='probe'); "
        "import udfs.teradata.script as s, byom; print(s.__file__); print(byom.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert out.stdout.count("byom_core.zip") == 2, out.stdout
    columns = ",".join(f"{c}:FLOAT" for c in IRIS_FEATURES)
    run = subprocess.run(
        [
            sys.executable,
            "./mydb/byom_score.py",
            "--columns",
            columns,
            "--model-id",
            "iris",
            "--model-file",
            f"iris=./mydb/{model_file.name}",
            "--inputs",
            ",".join(IRIS_FEATURES),
            "--outputs",
            "score",
        ],
        input="5.1\t3.5\t1.4\t0.2\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    want = iris_logreg[0].predict_proba([[5.1, 3.5, 1.4, 0.2]]).max()
    assert float(run.stdout) == pytest.approx(want, abs=1e-6)


SQL_DIR = __import__("pathlib").Path(__file__).resolve().parents[1] / "sql" / "teradata"


def _template_query(name: str) -> str:
    text = (SQL_DIR / name).read_text()
    return text[text.index("SET SESSION SEARCHUIFDBPATH") :].rstrip().rstrip(";")


def test_sql_templates_are_what_byom_prints():
    """sql/teradata's scoring templates are the generator's output, not hand-written copies."""
    classifier = types.SimpleNamespace(task="classification")
    inline = ScriptQuery(
        table="customers",
        columns=parse_columns("id INTEGER, age FLOAT, income FLOAT"),
        database="mydb",
        models={"churn_v3": classifier},
        model_id="churn_v3",
        accumulate=["id"],
    )
    assert _template_query("score_inline.sql") == inline.sql()
    files = ScriptQuery(
        table="customers",
        columns=parse_columns("id INTEGER, model_id VARCHAR(30), age FLOAT, income FLOAT"),
        database="mydb",
        models={"churn_v3": classifier, "churn_v4": classifier},
        model_column="model_id",
        delivery="file",
        accumulate=["id"],
        outputs=["score"],
        model_shas={
            "churn_v3": "5d41402abc4b2a76" + "0" * 48,
            "churn_v4": "7d793037a0760186" + "0" * 48,
        },
    )
    assert _template_query("score_files.sql") == files.sql()
    many = ScriptQuery(
        table="customers",
        columns=parse_columns("id INTEGER, model_id VARCHAR(30), age FLOAT, income FLOAT"),
        database="mydb",
        models={"churn_v3": classifier, "churn_v4": classifier},
        model_column="model_id",
        partition_key="model_id",
        accumulate=["id"],
        outputs=["score"],
    )
    assert _template_query("score_many_models.sql") == many.sql()
    # One partition per model: the bucket is a function of the model id alone.
    assert 'PARTITION BY "model_id","byom_part"' in many.sql()
    assert "HASHBUCKET(HASHROW(t.model_id)) MOD (HASHAMP() + 1) AS byom_part" in many.sql()
    apply = ScriptQuery(
        table="customers",
        columns=parse_columns("id INTEGER, age FLOAT, income FLOAT"),
        database="mydb",
        models={"churn_v3": classifier},
        model_id="churn_v3",
        accumulate=["id"],
        operator="apply",
        environment="byom_env",
    )
    text = (SQL_DIR / "score_apply.sql").read_text()
    assert text[text.index("SELECT * FROM Apply(") :].rstrip().rstrip(";") == apply.sql()


def test_model_table_ddl_parses_as_teradata():
    ddl = sqlglot.parse_one((SQL_DIR / "create_models_table.sql").read_text(), read="teradata")
    names = [c.name for c in ddl.find_all(sqlglot.exp.ColumnDef)]
    assert names[:3] == ["model_id", "model", "model_b64"]


def teradataml_apply_sql(query: ScriptQuery) -> str:
    """The same APPLY query from teradataml's own Apply class, run without a connection."""
    from unittest import mock

    import teradataml as tdml
    from teradataml.common.wrapper_utils import AnalyticsWrapperUtils
    from teradataml.table_operators.Apply import Apply
    from teradatasqlalchemy import FLOAT, INTEGER, VARCHAR

    types_ = {"INTEGER": INTEGER(), "FLOAT": FLOAT()}
    returns = OrderedDict(
        (n, VARCHAR(int(t[8:-1])) if t.startswith("VARCHAR") else types_[t])
        for n, t in query.returns()
    )
    dist, order = query.distribution()
    keys = re.findall(r'"([^"]+)"', dist) or None
    on = {"ref": f"({query.on_query()})", "ref_type": "TABLE"}
    with mock.patch.object(
        AnalyticsWrapperUtils, "_teradata_on_clause_from_dataframe", return_value=on
    ):
        apply = Apply(
            apply_command=query.command().replace("'", "''"),
            env_name=query.environment,
            returns=returns,
            delimiter=query.delimiter,
            quotechar=query.quotechar,
            data_partition_column=keys,
            data_order_column=order,
            ctx=types.SimpleNamespace(configure=tdml.configure),
        )
        apply.data = mock.MagicMock()
        apply.skip_argument_validation = True
        apply._Apply__form_table_operator_query()
    return apply._tblop_query


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_query_matches_teradataml(case, scorers, iris_logreg):
    """VantageCloud Lake: the APPLY query as teradataml's Apply writes it, files by bare name
    (the user environment's folder), CSV style, comma and double quote by default."""
    settings = {k: v for k, v in CASES[case].items() if k not in ("quotechar", "charset")}
    query = ScriptQuery(
        table="customers",
        columns=parse_columns(COLUMNS),
        database="mydb",
        models=scorers,
        model_shas={"iris": sha256_hex(iris_logreg[1])},
        operator="apply",
        environment="byom_env",
        **settings,
    )
    assert query.command().startswith("python3 byom_score.py ")
    assert "--operator apply" in query.command() and "./mydb/" not in query.command()
    assert (query.delimiter, query.quotechar) == (",", '"')
    assert squash(query.sql()) == squash(teradataml_apply_sql(query))
    with pytest.raises(ByomError, match="user environment"):
        ScriptQuery(
            table="t",
            columns=parse_columns(COLUMNS),
            database="db",
            models=scorers,
            model_id="iris",
            operator="apply",
        )


def test_install_template_is_what_deploy_prints(tmp_path, monkeypatch):
    """sql/teradata/install_files.sql: `byom teradata deploy --database mydb` run from a folder
    where it writes ./byom_teradata, for a model whose content names its file."""
    monkeypatch.chdir(tmp_path)
    lines = [
        line
        for line in (SQL_DIR / "install_files.sql").read_text().splitlines()
        if line and not line.startswith("--")
    ]
    model_line = lines.pop()
    name = re.search(r"'(byom_[0-9a-f]{16})'", model_line).group(1)
    printed = deploy.plan("mydb", __import__("pathlib").Path("byom_teradata"), {}).statements
    assert lines == [f"{s};" for s in printed]
    call = install_statements("mydb", [(name, f"byom_teradata/{name}", True)])[-1]
    assert model_line == f"{call};"
