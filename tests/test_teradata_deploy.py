"""`byom teradata deploy` and `check` (issue 16): the model upload, the package check, the
VantageCloud Lake user environment.

No Teradata server or Lake runs here, and nothing connects: the upload runs on a recording
DB-API connection and is compared with what teradataml's own save_byom sends for the same row
(run on a recording context); the queries with teradataml's query generators; the environment
steps on recording stand-ins of teradataml's create_env / get_env, whose calls must bind to
teradataml's real signatures. The check script runs as the server runs it, through `sh -c`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import inspect
import io
import os
import platform
import re
import shlex
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
import tomllib
from helpers import IRIS_FEATURES, LINEAR_PMML

from byom.errors import ByomError, ModelExistsError
from udfs.teradata import deploy

ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "sql" / "teradata"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pyproject_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


# -- item 1: the upload ---------------------------------------------------------------------------
class RecordingConnection:
    """A DB-API connection (teradatasql's surface) that records what is sent to it.
    `tables` are the tables the dictionary holds; `rows` the model ids a table holds."""

    def __init__(self, tables=(), rows=(), fail_on: str | None = None, database="MYDB"):
        self.log: list[tuple] = []
        self.tables, self.rows, self.fail_on, self.database = set(tables), rows, fail_on, database
        self._autocommit = True
        self._result: list[tuple] = []

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.log.append(("autocommit", value))
        self._autocommit = value

    def commit(self) -> None:
        self.log.append(("commit",))

    def rollback(self) -> None:
        self.log.append(("rollback",))

    def cursor(self):
        return self

    def execute(self, sql: str, params=None):
        self.log.append((sql, params))
        if self.fail_on and sql.startswith(self.fail_on):
            raise RuntimeError("[Error 2644] No more room in database MYDB.")
        if sql == "select database":
            self._result = [(self.database,)]
        elif sql == deploy.TABLE_EXISTS:
            self._result = [(params[1],)] if tuple(params) in self.tables else []
        elif sql.startswith("select model_id from"):
            self._result = [(r,) for r in self.rows if r in params]
        return self

    def fetchone(self):
        return self._result[0] if self._result else None

    def fetchall(self):
        return list(self._result)


def ddl_columns(text: str) -> list[tuple[str, bool]]:
    """(name, has a DEFAULT) of each column a CREATE TABLE declares, read by sqlglot."""
    create = sqlglot.parse_one(text, read="teradata")
    return [
        (
            c.name,
            any(
                isinstance(k.kind, sqlglot.exp.DefaultColumnConstraint)
                for k in c.args.get("constraints") or []
            ),
        )
        for c in create.this.expressions
    ]


def test_created_table_is_the_sql_file():
    """upload_models creates exactly sql/teradata/create_models_table.sql's table, and writes
    every column of it that has no DEFAULT."""
    file_text = (SQL_DIR / "create_models_table.sql").read_text()
    from_file = sqlglot.parse_one(file_text, read="teradata")
    assert from_file == sqlglot.parse_one(deploy.create_table_sql("byom_models"), read="teradata")
    columns = ddl_columns(file_text)
    assert [name for name, has_default in columns if not has_default] == list(deploy.UPLOADED)
    assert ("created_at", True) in columns
    assert "UNIQUE PRIMARY INDEX (model_id)" in deploy.create_table_sql("byom_models")


def test_upload_creates_the_missing_table_then_inserts_in_one_transaction(iris_logreg):
    blob = iris_logreg[1]
    models = {"iris": blob, "lin": LINEAR_PMML}
    con = RecordingConnection()
    deploy.upload_models(models, "byom_models", connection=con)
    insert = (
        "insert into byom_models (model_id, model, model_b64, sha256, format) "
        "values (?, ?, ?, ?, ?)"
    )
    assert con.log == [
        ("select database", None),
        (deploy.TABLE_EXISTS, ["MYDB", "byom_models"]),
        (deploy.create_table_sql("byom_models"), None),
        ("autocommit", False),
        (insert, ["iris", blob, base64.b64encode(blob).decode(), sha(blob), "onnx"]),
        (
            insert,
            ["lin", LINEAR_PMML, base64.b64encode(LINEAR_PMML).decode(), sha(LINEAR_PMML), "pmml"],
        ),
        ("commit",),
        ("autocommit", True),
    ]
    row = con.log[4][1]
    assert type(row[1]) is bytes and type(row[2]) is str  # bound as BLOB and as CLOB text
    assert base64.b64decode(row[2]) == blob


def test_upload_statement_is_teradatamls_save_byom(tmp_path, iris_logreg):
    """The INSERT and its values equal what teradataml's save_byom sends for the same row
    (its own code, on a context that records instead of connecting)."""
    blob = iris_logreg[1]
    from teradataml.catalog.byom import BYOM

    sent: list[tuple] = []
    created: dict = {}
    connection = types.SimpleNamespace(
        dialect=types.SimpleNamespace(has_table=lambda *a, **k: False)
    )
    ctx = types.SimpleNamespace(
        dbutils=types.SimpleNamespace(_create_table=lambda table, cols, **_: created.update(cols)),
        get_connection=lambda: connection,
        _get_current_databasename=lambda: "mydb",
        in_schema=lambda schema, table: f'"{schema}"."{table}"',
        _util_funcs=types.SimpleNamespace(_set_queryband=lambda: None),
        execute_sql=lambda statement, parameters=None: sent.append((statement, parameters)),
    )
    byom_api = BYOM(ctx=ctx)
    (tmp_path / "iris.onnx").write_bytes(blob)
    extra = {"model_b64": base64.b64encode(blob).decode(), "sha256": sha(blob), "format": "onnx"}
    with pytest.warns(UserWarning, match="Taking default datatypes"):
        byom_api.save_byom("iris", str(tmp_path / "iris.onnx"), "byom_models", "mydb", extra)
    [(their_sql, (their_row,))] = sent
    # Why byom creates its own table: teradataml's would hold the base64 in VARCHAR(1024).
    assert created["model_b64"].length == 1024

    con = RecordingConnection(tables={("mydb", "byom_models")})
    deploy.upload_models({"iris": blob}, '"mydb"."byom_models"', connection=con)
    ours = [entry for entry in con.log if entry[0].startswith("insert")]
    assert ours == [(their_sql.rstrip(";"), their_row)]


def test_table_check_is_teradatas_has_table():
    """The existence check is the query teradataml's has_table (teradatasqlalchemy) sends."""
    from teradatasqlalchemy.dialect import TeradataDialect

    seen = []

    class Recorder:
        def execute(self, stmt):
            seen.append((str(stmt), stmt.compile().params))
            return types.SimpleNamespace(fetchone=lambda: ("byom_models",))

    assert TeradataDialect().has_table(Recorder(), "byom_models", schema="mydb", table_only=True)
    [(text, params)] = seen
    as_qmarks = re.sub(r":(schema|table_name)\b", "?", text)
    assert " ".join(as_qmarks.split()) == " ".join(deploy.TABLE_EXISTS.split())
    assert list(params.values()) == ["mydb", "byom_models"]


def test_replace_deletes_each_row_then_inserts_in_one_transaction(iris_logreg):
    blob = iris_logreg[1]
    con = RecordingConnection(tables={("analytics", "models")}, rows=["iris"])
    deploy.upload_models({"iris": blob}, "analytics.models", replace=True, connection=con)
    assert [entry[0] for entry in con.log] == [
        deploy.TABLE_EXISTS,
        "autocommit",
        "delete from analytics.models where model_id = (?)",
        deploy.insert_sql("analytics.models"),
        "commit",
        "autocommit",
    ]
    assert con.log[2][1] == ["iris"] and con.log[3][1][1] == blob


def test_a_taken_id_is_refused_before_anything_is_written(iris_logreg):
    con = RecordingConnection(tables={("MYDB", "byom_models")}, rows=["iris"])
    with pytest.raises(ModelExistsError, match=r"iris are already in byom_models: pass --replace"):
        deploy.upload_models({"iris": iris_logreg[1]}, "byom_models", connection=con)
    assert not any(entry[0].startswith(("insert", "autocommit")) for entry in con.log)


def test_a_failed_insert_rolls_back_and_restores_autocommit(iris_logreg):
    con = RecordingConnection(tables={("MYDB", "byom_models")}, fail_on="insert")
    with pytest.raises(RuntimeError, match="2644"):
        deploy.upload_models({"iris": iris_logreg[1]}, "byom_models", replace=True, connection=con)
    assert con.log[-2:] == [("rollback",), ("autocommit", True)]
    assert ("commit",) not in con.log


@pytest.mark.parametrize("bad", ["x" * 129, "modèle"])
def test_an_id_the_table_cannot_hold_is_refused(bad):
    with pytest.raises(ByomError, match="save the model under an ASCII id of at most 128"):
        deploy.upload_models({bad: LINEAR_PMML}, "byom_models", connection=RecordingConnection())


# -- item 2: the check -----------------------------------------------------------------------------
from udfs.teradata.byom_check import COLUMNS, PACKAGES  # noqa: E402
from udfs.teradata.check import apply_check_query, script_check_query  # noqa: E402

ABSENT = "raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n"
BROKEN = "raise ImportError('libonnxruntime.so.1: cannot open shared object file')\n"


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory) -> Path:
    """A folder as SCRIPT / APPLY run in: ./mydb/ holds the deployed files, and bin/ the
    interpreters (`tdpython3`, `python3`) as this Python."""
    root = tmp_path_factory.mktemp("server")
    deploy.build_bundle(root / "mydb")
    (root / "bin").mkdir()
    for name in ("tdpython3", "python3"):
        (root / "bin" / name).write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (root / "bin" / name).chmod(0o755)
    return root


def command_of(query: str, clause: str) -> str:
    """The command text inside SCRIPT_COMMAND('...') / APPLY_COMMAND('...')."""
    match = re.search(clause + r"\('((?:[^']|'')*)'\)", query)
    assert match, query
    return match.group(1).replace("''", "'")


def run_check(server: Path, command: str, cwd: Path, stdin: str = "", shadows: Path | None = None):
    env = dict(os.environ, PATH=f"{server / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    if shadows:
        env["PYTHONPATH"] = str(shadows)
    proc = subprocess.run(
        ["sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def script_rows(out: str) -> dict[str, list[str]]:
    rows = [line.split("\t") for line in out.splitlines()]
    assert all(len(r) == len(COLUMNS) for r in rows), out
    return {r[0]: r[1:] for r in rows}


def test_check_reports_this_pythons_real_versions(server_dir):
    out = run_check(
        server_dir, command_of(script_check_query("mydb"), "SCRIPT_COMMAND"), server_dir
    )
    rows = script_rows(out)
    assert rows["python"] == [platform.python_version(), "all", "ok", ""]
    assert list(rows) == ["python", *(p[0] for p in PACKAGES)]
    for dist, _, _, needed_for in PACKAGES:
        assert rows[dist] == [importlib.metadata.version(dist), needed_for, "ok", ""]


def test_check_names_a_missing_package_and_its_fix(server_dir, tmp_path):
    for name, body in (("onnxruntime", BROKEN), ("scipy", ABSENT)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body.format(name=name))
    out = run_check(
        server_dir,
        command_of(script_check_query("mydb"), "SCRIPT_COMMAND"),
        server_dir,
        shadows=tmp_path,
    )
    rows = script_rows(out)
    assert rows["scipy"] == [
        "missing",
        "all",
        "missing",
        "the DBA runs `pip install 'scipy>=1.11'` into tdpython3 on every node",
    ]
    version, needed_for, status, fix = rows["onnxruntime"]
    assert (version, needed_for, status) == ("missing", "ONNX", "broken")
    assert "libonnxruntime.so.1: cannot open shared object file" in fix
    assert "pip install 'onnxruntime>=1.17'" in fix
    assert rows["numpy"][2] == "ok"


def test_apply_check_writes_csv_in_the_environment(server_dir, tmp_path):
    """APPLY runs `python3 byom_check.py` in the environment's file folder, one input row on
    stdin; the rows come back as RFC 4180 CSV."""
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "__init__.py").write_text(ABSENT.format(name="onnx"))
    out = run_check(
        server_dir,
        command_of(apply_check_query("byom"), "APPLY_COMMAND"),
        server_dir / "mydb",
        stdin="1\n",
        shadows=tmp_path,
    )
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(out))}
    assert rows["onnx"][:3] == ["missing", "ONNX", "missing"]
    assert "env.install_lib('onnx>=1.15')" in rows["onnx"][3]
    assert rows["pyarrow"] == [importlib.metadata.version("pyarrow"), "all", "ok", ""]


def _generated(function: str, inputs: bool, args: list[tuple[str, str]]) -> str:
    import teradataml as tdml
    from teradataml.table_operators.apply_query_generator import (
        ApplyTableOperatorQueryGenerator,
    )
    from teradataml.table_operators.table_operator_query_generator import (
        TableOperatorQueryGenerator,
    )

    cls = ApplyTableOperatorQueryGenerator if function == "Apply" else TableOperatorQueryGenerator
    one = (lambda v: [v]) if inputs else (lambda v: [])
    generator = cls(
        function,
        one("input"),
        one("(SELECT 1 AS x)"),
        one("TABLE"),
        one("FACT"),
        one(None),
        one("NA_character_"),
        [name for name, _ in args],
        [value for _, value in args],
        ["STRING"] * len(args),
        [],
        [],
        func_input_order_by_type=one(None),
        engine="ENGINE_SQL",
        ctx=types.SimpleNamespace(configure=tdml.configure),
    )
    return generator._gen_table_operator_select_stmt_sql()


def test_check_queries_are_teradatamls_layout():
    from teradataml.common.utils import UtilFuncs

    def quoted(value: str) -> str:
        return UtilFuncs._teradata_collapse_arglist(value.replace("'", "''"), "'")

    returns = ", ".join(f"{n} {t}" for n, t in COLUMNS)
    script = script_check_query("mydb")
    first, query = script.split("\n", 1)
    assert first == "SET SESSION SEARCHUIFDBPATH = mydb;"
    command = "OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_check.py"
    args = [
        ("SCRIPT_COMMAND", quoted(command)),
        ("delimiter", quoted("\t")),
        ("returns", quoted(returns)),
    ]
    assert query == _generated("Script", False, args)
    args = [
        ("APPLY_COMMAND", quoted("python3 byom_check.py --operator apply")),
        ("ENVIRONMENT", quoted("byom")),
        ("STYLE", quoted("csv")),
        ("delimiter", quoted(",")),
        ("returns", returns),
    ]
    assert apply_check_query("byom") == _generated("Apply", True, args)


def test_check_packages_are_pyprojects():
    """byom_check.py (which must run without byom) holds pyproject's minimums."""
    deps = pyproject_dependencies()
    for dist, module, minimum, _ in PACKAGES:
        assert f"{dist}>={minimum}" in deps
        assert module == dist


def test_the_bundle_scores_without_the_cli_only_packages(server_dir, tmp_path, iris_logreg):
    """The dependencies byom_check.py and the user environment leave out (the CLI's) are not
    imported by byom_score.py: it scores ONNX with them absent."""
    left_out = [
        d for d in pyproject_dependencies() if not any(d == f"{p[0]}>={p[2]}" for p in PACKAGES)
    ]
    names = [re.match(r"[A-Za-z0-9_.-]+", d).group() for d in left_out]
    assert names == ["sqlglot", "typer", "rich"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(ABSENT.format(name=name))
    model = server_dir / "mydb" / "iris.onnx"
    model.write_bytes(iris_logreg[1])
    args = [
        "--columns",
        ",".join(f"{c}:FLOAT" for c in IRIS_FEATURES),
        "--model-id",
        "iris",
        "--model-file",
        "iris=./mydb/iris.onnx",
        "--inputs",
        ",".join(IRIS_FEATURES),
        "--outputs",
        "score",
    ]
    out = run_check(
        server_dir,
        shlex.join(["tdpython3", "./mydb/byom_score.py", *args]),
        server_dir,
        stdin="5.1\t3.5\t1.4\t0.2\n",
        shadows=tmp_path,
    )
    assert len(out.splitlines()) == 1


# -- item 3: the user environment ----------------------------------------------------------------
from udfs.teradata import environment  # noqa: E402


class RecordingEnv:
    def __init__(self, log: list) -> None:
        self.log = log

    def install_lib(self, *args, **kwargs):
        self.log.append(("install_lib", args, kwargs))

    def install_file(self, *args, **kwargs):
        path = kwargs.get("file_path", args[0] if args else None)
        self.log.append(("install_file", args, kwargs, sha(Path(path).read_bytes())))


class RecordingEnvApi:
    """teradataml's user environment functions, recording instead of calling Lake."""

    def __init__(self, existing: list[str] | None) -> None:
        self.existing, self.log = existing, []

    def list_user_envs(self, *args, **kwargs):
        self.log.append(("list_user_envs", args, kwargs))
        if self.existing is None:
            return None
        return pd.DataFrame({"env_name": self.existing, "base_env_name": "python_3.11"})

    def get_env(self, *args, **kwargs):
        self.log.append(("get_env", args, kwargs))
        return RecordingEnv(self.log)

    def create_env(self, *args, **kwargs):
        self.log.append(("create_env", args, kwargs))
        return RecordingEnv(self.log)


def assert_binds_to_teradataml(log: list) -> None:
    """Every recorded call fits the signature of teradataml's own function."""
    import teradataml
    from teradataml.scriptmgmt.UserEnv import UserEnv

    for name, args, kwargs, *_ in log:
        if name.startswith("install_"):
            inspect.signature(getattr(UserEnv, name)).bind(None, *args, **kwargs)
        else:
            inspect.signature(getattr(teradataml, name)).bind(*args, **kwargs)


def test_env_is_created_with_byoms_packages_and_files(tmp_path, iris_logreg):
    blob = iris_logreg[1]
    plan = environment.plan_env("byom_env", tmp_path / "out", {"iris": blob}, "python_3.11")
    api = RecordingEnvApi(existing=None)
    environment.deploy_env(plan, env_api=api)
    assert_binds_to_teradataml(api.log)
    assert [entry[0] for entry in api.log] == [
        "list_user_envs",
        "create_env",
        "install_lib",
        *["install_file"] * 4,
    ]
    assert api.log[1][2] == {"env_name": "byom_env", "base_env": "python_3.11", "desc": plan.desc}
    runtime = [
        d for d in pyproject_dependencies() if d.split(">=")[0] not in ("sqlglot", "typer", "rich")
    ]  # the CLI's (see the test above)
    assert sorted(api.log[2][2]["libs"]) == sorted(runtime) and list(api.log[2][2]) == ["libs"]
    installed = {Path(e[2]["file_path"]).name: e[3] for e in api.log[3:]}
    teradata_dir = ROOT / "udfs" / "teradata"
    assert installed == {
        "byom_score.py": sha((teradata_dir / "byom_score.py").read_bytes()),
        "byom_core.zip": sha((tmp_path / "out" / "byom_core.zip").read_bytes()),
        "byom_check.py": sha((teradata_dir / "byom_check.py").read_bytes()),
        f"byom_{sha(blob)[:16]}": sha(blob),
    }
    with zipfile.ZipFile(tmp_path / "out" / "byom_core.zip") as zf:
        assert {"byom/__init__.py", "udfs/teradata/script.py"} <= set(zf.namelist())
    assert all(e[2]["replace"] is True for e in api.log[3:])


def test_an_existing_env_is_updated_not_created(tmp_path):
    plan = environment.plan_env("byom_env", tmp_path, {})
    api = RecordingEnvApi(existing=["other", "byom_env"])
    environment.deploy_env(plan, env_api=api)
    assert_binds_to_teradataml(api.log)
    assert [e[0] for e in api.log][:3] == ["list_user_envs", "get_env", "install_lib"]
    assert api.log[1][1:] == (("byom_env",), {})
    assert len(api.log) == 3 + 3  # the three files of the bundle, no model


# -- the commands, run as a user runs them ---------------------------------------------------------
def byom(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "byom_cli", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_check_command_prints_the_tested_sql_file():
    run = byom("teradata", "check", "--database", "mydb", "--env", "byom_env")
    assert run.returncode == 0, run.stderr
    assert run.stdout == script_check_query("mydb") + ";\n" + apply_check_query("byom_env") + ";\n"
    text = (SQL_DIR / "check.sql").read_text()
    assert run.stdout == "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith("-- ")
    )


@pytest.fixture
def local_models(tmp_path) -> str:
    path = str(tmp_path / "local.duckdb")
    (tmp_path / "lin.pmml").write_bytes(LINEAR_PMML)
    added = byom("models", "add", str(tmp_path / "lin.pmml"), "--id", "lin", "--db", path)
    assert added.returncode == 0, added.stderr
    return path


def test_deploy_without_host_prints_the_env_steps_and_the_upload(tmp_path, local_models):
    out = tmp_path / "out"
    run = byom(
        "teradata",
        "deploy",
        "--env",
        "byom_env",
        "--models",
        "lin",
        "--upload-to",
        "byom_models",
        "--out",
        str(out),
        "--db",
        local_models,
    )
    assert run.returncode == 0, run.stderr
    plan = environment.plan_env("byom_env", out, {"lin": LINEAR_PMML})
    upload = deploy.describe_upload({"lin": LINEAR_PMML}, "byom_models", replace=False)
    assert run.stdout.splitlines() == [f"-- teradataml: {x}" for x in plan.describe()] + upload
    assert f"--   lin: {len(LINEAR_PMML)} bytes, sha256 {sha(LINEAR_PMML)}" in upload


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--models", "lin"], "--database (SCRIPT) or --env (APPLY)"),
        (["deploy", "--upload-to", "byom_models"], "--upload-to writes the models named in"),
        (["check"], "--database (SCRIPT) and/or --env (APPLY)"),
    ],
)
def test_commands_say_what_is_missing(local_models, args, message):
    run = (
        byom("teradata", *args, "--db", local_models)
        if args[0] == "deploy"
        else byom("teradata", *args)
    )
    assert run.returncode == 1 and message in run.stderr and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
