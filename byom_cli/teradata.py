"""`byom teradata`: the SCRIPT query to run, the files to install, the checks to make."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from byom.errors import ByomError
from byom.formats import sha256_hex
from byom.scoring import StoredModel
from byom_cli.commands import DbOption, TableOption, _connect, _fail, app

teradata_app = typer.Typer(
    help="Teradata SCRIPT table operator: the scoring query, the files to install.",
    no_args_is_help=True,
)


#: Above this size a model is better installed as a file (`--delivery file`): inline delivery
#: copies its base64 text (4/3 of its size) to one partition per AMP, in spool and on stdin.
INLINE_ADVICE_BYTES = 16 * 1024**2


def _advise_file_delivery(stored: dict[str, StoredModel]) -> None:
    for model_id, model in stored.items():
        if len(model.blob) > INLINE_ADVICE_BYTES:
            sys.stderr.write(
                f"note: model {model_id!r} is {len(model.blob) / 1024**2:,.0f} MB; inline "
                "delivery sends its base64 text to every AMP with each query: install it as a "
                "file instead (`byom teradata deploy --models ...`, then `--delivery file`)\n"
            )


def _local_models(db: str, table: str, ids: list[str]) -> dict[str, StoredModel]:
    """The models named, read once from the local (DuckDB) model table."""
    from byom.errors import UnknownModelError

    _, store = _connect(db, table)
    found = {}
    for model_id in ids:
        stored = store.fetch(model_id)
        if stored is None:
            raise UnknownModelError(model_id, store.model_ids(), table)
        found[model_id] = stored
    return found


def _ids(text: str | None) -> list[str]:
    """A comma-separated option's names, in order, each once (`--models a,a` means a)."""
    return list(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))


def _check_unique_columns(columns: list[Any]) -> None:
    """Teradata names columns case-insensitively; a repeated one would score the wrong value."""
    seen: dict[str, str] = {}
    for column in columns:
        if column.name.lower() in seen:
            raise ByomError(
                f"--columns names column {column.name!r} twice ({seen[column.name.lower()]!r} "
                "before): give each column of the input its own name, e.g. `b.id AS b_id`"
            )
        seen[column.name.lower()] = column.name


@teradata_app.command("sql")
def teradata_sql(
    input_table: str = typer.Option(..., "--input", help="Teradata table (or view) to score"),
    columns: str = typer.Option(
        ..., "--columns", help="The input's columns in order: 'id INTEGER, x FLOAT, ...'"
    ),
    database: str = typer.Option(..., "--database", help="Database holding byom's files"),
    model_id: str | None = typer.Option(None, "--model-id", help="Score every row with it"),
    model_column: str | None = typer.Option(
        None, "--model-column", help="Column naming each row's model (ids from --models)"
    ),
    models: str | None = typer.Option(None, "--models", help="Model ids a model column names"),
    delivery: str = typer.Option(
        "inline", "--delivery", help="inline (base64 from the model table) or file (installed)"
    ),
    accumulate: str = typer.Option("", "--accumulate", help="Columns to pass through"),
    outputs: str = typer.Option(
        "prediction,json_report",
        "--outputs",
        help="prediction, json_report, score, label, prob_<class>",
    ),
    inputs: str | None = typer.Option(
        None, "--inputs", help="Input map, like ModelInputFieldsMap (default: the model's own)"
    ),
    partition_key: str | None = typer.Option(
        None, "--partition-key", help="Column spreading inline partitions (default: the first)"
    ),
    quotechar: str | None = typer.Option(None, "--quotechar", help="QUOTECHAR to use"),
    charset: str | None = typer.Option(None, "--charset", help="CHARSET to use (LATIN, UTF16)"),
    models_table: str = typer.Option(
        "byom_models", "--models-table", help="The Teradata model table (inline delivery)"
    ),
    operator: str = typer.Option(
        "script", "--operator", help="script (Vantage) or apply (VantageCloud Lake's APPLY)"
    ),
    env_name: str | None = typer.Option(
        None, "--env", help="APPLY's user environment holding byom's files"
    ),
    set_session: bool = typer.Option(
        True,
        "--set-session/--no-set-session",
        help="Print SET SESSION SEARCHUIFDBPATH before a SCRIPT query (needed once a session)",
    ),
    db: str = DbOption,
    table: str = TableOption,
) -> None:
    """Print the SCRIPT (or APPLY) query that scores a Teradata table with models from the
    local table, after SET SESSION SEARCHUIFDBPATH."""
    from udfs.teradata.script import parse_columns

    try:
        ids = [model_id] if model_id else _ids(models)
        if not ids:
            raise ByomError("with --model-column, list the model ids it names in --models")
        _check_unique_columns(parse_columns(columns))
        stored = _local_models(db, table, ids)
        if inputs is None and model_id is not None:  # the input map saved with the model
            inputs = stored[model_id].input_map
        settings = dict(
            model_id=model_id,
            model_column=model_column,
            delivery=delivery,
            models_table=models_table,
            accumulate=_ids(accumulate),
            outputs=_ids(outputs),
            inputs=inputs,
            partition_key=partition_key,
            quotechar=quotechar,
            charset=charset,
            operator=operator,
            environment=env_name,
        )
        text = _query(input_table, columns, database, stored, settings).sql(set_session)
        if delivery == "inline":
            _advise_file_delivery(stored)
    except Exception as exc:
        _fail(exc)
    sys.stdout.write(text + ";\n")


def _query(
    table: str, columns: str, database: str, stored: dict[str, StoredModel], settings: dict
) -> Any:
    from byom.scorers import load_scorer
    from udfs.teradata.script import parse_columns
    from udfs.teradata.sql import ScriptQuery

    return ScriptQuery(
        table=table,
        columns=parse_columns(columns),
        database=database,
        models={m: load_scorer(s.blob, m) for m, s in stored.items()},
        model_shas={m: s.sha256 or sha256_hex(s.blob) for m, s in stored.items()},
        **settings,
    )


@teradata_app.command("deploy")
def teradata_deploy(
    database: str | None = typer.Option(
        None, "--database", help="Database to install byom's SCRIPT files in"
    ),
    env: str | None = typer.Option(
        None, "--env", help="VantageCloud Lake user environment to create or update (APPLY)"
    ),
    base_env: str | None = typer.Option(
        None, "--base-env", help="Base Python of a new --env (default: teradataml's newest)"
    ),
    out_dir: Path = typer.Option(
        Path("byom_teradata"), "--out", help="Folder for the files to install"
    ),
    models: str | None = typer.Option(
        None, "--models", help="Model ids to install as files (file delivery) or upload"
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace files installed before, and uploaded models' rows"
    ),
    host: str | None = typer.Option(None, "--host", help="Teradata host: run the statements"),
    user: str | None = typer.Option(None, "--user", envvar="TD_USER"),
    password: str | None = typer.Option(None, "--password", envvar="TD_PASSWORD"),
    ues_url: str | None = typer.Option(
        None, "--ues-url", help="Lake's Open Analytics endpoint, for --env (set_auth_token)"
    ),
    pat_token: str | None = typer.Option(None, "--pat-token", envvar="TD_PAT_TOKEN"),
    pem_file: str | None = typer.Option(None, "--pem-file", envvar="TD_PEM_FILE"),
    upload_to: str | None = typer.Option(
        None, "--upload-to", help="Write the --models into this Teradata model table"
    ),
    db: str = DbOption,
    table: str = TableOption,
) -> None:
    """Write byom's files; print (or, with --host, run) the SQL that installs them (--database),
    the user environment steps (--env) and the model upload (--upload-to)."""
    from udfs.teradata import deploy, environment

    try:
        if not (database or env or upload_to):
            raise ByomError("name where byom goes: --database (SCRIPT) or --env (APPLY)")
        if upload_to and not models:
            raise ByomError("--upload-to writes the models named in --models: list them")
        blobs = {m: s.blob for m, s in _local_models(db, table, _ids(models)).items()}
        deployment = deploy.plan(database, out_dir, blobs, replace) if database else None
        env_plan = environment.plan_env(env, out_dir, blobs, base_env) if env else None
        for statement in deployment.statements if deployment else []:
            sys.stdout.write(statement + ";\n")
        for line in env_plan.describe() if env_plan else []:
            sys.stdout.write(f"-- teradataml: {line}\n")
        if upload_to:
            for line in deploy.describe_upload(blobs, upload_to, replace):
                sys.stdout.write(line + "\n")
        if host is not None:
            from teradataml import create_context, remove_context, set_auth_token

            create_context(host=host, username=user, password=password)
            try:
                if deployment:
                    deploy.run(deployment)
                if env_plan:
                    if ues_url:
                        set_auth_token(base_url=ues_url, pat_token=pat_token, pem_file=pem_file)
                    environment.deploy_env(env_plan)
                if upload_to:
                    deploy.upload_models(blobs, upload_to, replace=replace)
            finally:
                remove_context()
    except Exception as exc:
        _fail(exc)


@teradata_app.command("check")
def teradata_check(
    database: str | None = typer.Option(
        None, "--database", help="Database byom's SCRIPT files are installed in"
    ),
    env: str | None = typer.Option(None, "--env", help="User environment (APPLY, Lake)"),
) -> None:
    """Print the query that reports the database Python's version and which of byom's
    packages it imports (one row per package, with the fix for a missing one)."""
    from udfs.teradata.check import apply_check_query, script_check_query

    try:
        if not (database or env):
            raise ByomError("name what to check: --database (SCRIPT) and/or --env (APPLY)")
        queries = [script_check_query(database)] if database else []
        queries += [apply_check_query(env)] if env else []
    except Exception as exc:
        _fail(exc)
    for query in queries:
        sys.stdout.write(query + ";\n")


app.add_typer(teradata_app, name="teradata")
