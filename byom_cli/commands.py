"""`byom` command line: each command is a thin call into the Python API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from byom import config
from byom.errors import ByomError, ModelTableError, ModelTooLargeError, UnknownModelError

app = typer.Typer(
    help="Score ONNX and PMML models stored in a table, with SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="Add, list, show and remove models in a model table.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, whatever the width

DB_HELP = "DuckDB database file (only `models add` creates it); env BYOM_DB"
TABLE_HELP = "Model table: byom's full layout or any table with model_id and model columns"
DbOption = typer.Option("byom.duckdb", "--db", envvar="BYOM_DB", help=DB_HELP)
TableOption = typer.Option("byom_models", "--table", help=TABLE_HELP)
FormatOption = typer.Option("table", "--format", help="table, csv or json")
SparkTableOption = typer.Option(
    None,
    "--spark-table",
    metavar="PATH_OR_NAME",
    help="Use a Spark model table (Parquet path or catalog table) instead of DuckDB; "
    "Spark's master comes from env BYOM_SPARK_MASTER (default local[1])",
)


def _connect(db: str, table: str, mode: str = "read") -> tuple[Any, Any]:
    """A DuckDB connection with byom registered on the model table.

    mode "create" (models add) creates the database file and the table when missing; "write"
    (rm, query) and "read" (list, show, teradata) need both to exist, so a typo in --db or
    --table is an error rather than a new, empty database; "read" also opens the file read-only.
    """
    from udfs.duckdb import register
    from udfs.duckdb._engine import import_duckdb

    duckdb = import_duckdb()
    in_memory = db == ":memory:" or db.startswith(("md:", "motherduck:"))
    if mode != "create" and not in_memory and not Path(db).exists():
        raise ModelTableError(
            f"database file {db!r} does not exist (in {Path.cwd()}); pass --db (env BYOM_DB) "
            f"with an existing one, or create it and its model table with "
            f"`byom models add MODEL_FILE --id ID --db {db}`"
        )
    con = duckdb.connect(db, read_only=mode == "read" and not in_memory)
    if sys.stderr.isatty():
        con.execute("SET enable_progress_bar = true")
    store = register(con, table, create=mode == "create")
    return con, store


def _store(db: str, table: str, spark_table: str | None, mode: str = "read") -> Any:
    """The model table the command works on: DuckDB's, or Spark's with --spark-table."""
    if spark_table is None:
        return _connect(db, table, mode)[1]
    from udfs.spark import SparkModelStore
    from udfs.spark._engine import import_pyspark

    import_pyspark()
    from pyspark.sql import SparkSession

    master = os.environ.get("BYOM_SPARK_MASTER", "local[1]")
    spark = SparkSession.builder.master(master).appName("byom models").getOrCreate()
    return SparkModelStore(spark, spark_table)


def _fail(exc: BaseException) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(1)


@models_app.command("add")
def models_add(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="ONNX or PMML file"),
    model_id: str = typer.Option(..., "--id", help="Model id, the first argument of score()"),
    db: str = DbOption,
    table: str = TableOption,
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing model id"),
    inputs: str | None = typer.Option(
        None, "--inputs", help="Input map: 'c1,c2,...', 'input=c1,c2;other=c3' or JSON"
    ),
    description: str | None = typer.Option(None, "--description", help="Free text"),
    spark_table: str | None = SparkTableOption,
) -> None:
    """Validate a model (it must load and score a sample row) and save it in the table."""
    try:
        blob = _read_model_file(file)
        store = _store(db, table, spark_table, mode="create")
        record = store.add(model_id, blob, replace=replace, inputs=inputs, description=description)
    except Exception as exc:
        _fail(exc)
    out.print(
        f"saved {record.format} model {record.model_id!r} ({record.size_bytes:,} bytes, "
        f"sha256 {record.sha256[:12]}) in {store.table}",
        highlight=False,
    )


def _read_model_file(path: Path) -> bytes:
    """The file's bytes, refusing an oversized file before reading it: at most limit + 1 bytes
    are ever read, so a huge (or growing) file cannot exhaust memory."""
    limit = config.MAX_MODEL_BYTES
    size = path.stat().st_size
    with path.open("rb") as handle:
        blob = handle.read(limit + 1)
    if size > limit or len(blob) > limit:
        raise ModelTooLargeError(
            f"model file {str(path)!r} is {max(size, len(blob)):,} bytes, over the limit of "
            f"{limit:,}; raise BYOM_MAX_MODEL_BYTES if this model is trusted and really that large"
        )
    return blob


@models_app.command("list")
def models_list(
    db: str = DbOption,
    table: str = TableOption,
    fmt: str = FormatOption,
    spark_table: str | None = SparkTableOption,
) -> None:
    """List the models in the table."""
    import pyarrow as pa

    _check_format(fmt)
    try:
        store = _store(db, table, spark_table)
        rows = store.list()
    except Exception as exc:
        _fail(exc)
    keep = ("model_id", "format", "size_bytes", "sha256", "created_at", "description")
    listing = pa.Table.from_pylist([{k: r.get(k) for k in keep} for r in rows])
    _print_table(listing if rows else pa.table({k: [] for k in keep}), fmt)


@models_app.command("show")
def models_show(
    model_id: str = typer.Argument(...),
    db: str = DbOption,
    table: str = TableOption,
    spark_table: str | None = SparkTableOption,
) -> None:
    """Show one model's metadata and its input and output schema."""
    try:
        store = _store(db, table, spark_table)
        row = store.show(model_id)
    except Exception as exc:
        _fail(exc)
    for key in ("input_schema", "output_schema", "inputs"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    out.print_json(json.dumps(row, default=str))


@models_app.command("rm")
def models_rm(
    model_ids: list[str] = typer.Argument(..., help="One or more model ids"),
    db: str = DbOption,
    table: str = TableOption,
    spark_table: str | None = SparkTableOption,
) -> None:
    """Remove models from the table (all named ids must exist: none is removed otherwise)."""
    try:
        store = _store(db, table, spark_table, mode="write")
        known = set(store.model_ids())
        for model_id in model_ids:
            if model_id not in known:
                raise UnknownModelError(model_id, known, store.table)
        for model_id in dict.fromkeys(model_ids):
            store.remove(model_id)
    except Exception as exc:
        _fail(exc)
    removed = ", ".join(repr(m) for m in dict.fromkeys(model_ids))
    out.print(f"removed {removed} from {store.table}", highlight=False)


@app.command("query")
def query(
    sql_text: str = typer.Argument(..., metavar="SQL", help="SQL to run; '-' reads it from stdin"),
    db: str = DbOption,
    table: str = TableOption,
    fmt: str = FormatOption,
) -> None:
    """Run SQL with score / predict / predict_json registered; `score(model_id, *)` works.

    Every column is printed, in order, even when names repeat (SELECT a.id, b.id).

    csv and table keep the names as they are.

    json prints one object per row; a repeated name gets a suffix, as in DuckDB tables: id, id_1.
    """
    from udfs.duckdb import sql

    _check_format(fmt)
    text = sys.stdin.read() if sql_text == "-" else sql_text
    try:
        con, _ = _connect(db, table, mode="write")
        rel = sql(con, text)
        # to_arrow_table is DuckDB 1.5+'s name; fetch_arrow_table warns there.
        fetch = getattr(rel, "to_arrow_table", None) or getattr(rel, "fetch_arrow_table", None)
        result = fetch() if rel is not None and fetch is not None else None
    except Exception as exc:
        _fail(exc)
    if result is None:
        return
    _print_table(result, fmt)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "csv", "json"):
        _fail(ByomError(f"unknown --format {fmt!r}; use table, csv or json"))


def _unique_names(names: list[str]) -> list[str]:
    """Names made unique the way DuckDB names a table's repeated columns: id, id_1, id_2."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, k = name, 0
        while candidate in used:
            k += 1
            candidate = f"{name}_{k}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def _print_table(result: Any, fmt: str) -> None:
    """Print by column position, never through a dict keyed by name, so that repeated column
    names keep every value under its own header."""
    import pyarrow as pa

    names = list(result.column_names)
    columns = [result.column(i).to_pylist() for i in range(result.num_columns)]
    rows = list(zip(*columns, strict=True)) if columns else []
    if fmt == "json":
        keys = _unique_names(names)
        objects = [dict(zip(keys, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(objects, default=str, indent=None) + "\n")
        return
    nested = [pa.types.is_nested(f.type) or pa.types.is_map(f.type) for f in result.schema]

    def cells(row: tuple[Any, ...]) -> list[str]:
        return [
            "" if value is None else json.dumps(value, default=str) if deep else str(value)
            for value, deep in zip(row, nested, strict=True)
        ]

    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(cells(row) for row in rows)
        return
    view = Table(*names)
    for row in rows:
        view.add_row(*cells(row))
    out.print(view)


@app.command("demo")
def demo(
    rows: int = typer.Option(1_000_000, "--rows", help="Rows in the generated table"),
    db: str = typer.Option(":memory:", "--db", help="DuckDB database for the demo"),
    pmml_rows: int = typer.Option(
        1_000_000, "--pmml-rows", help="Rows scored through the PMML copy of the forest"
    ),
) -> None:
    """Train models on a scikit-learn data set, store them, score a generated table in SQL."""
    from byom_cli.demo import run_demo

    try:
        run_demo(rows=rows, db=db, pmml_rows=pmml_rows, console=out)
    except ByomError as exc:
        _fail(exc)


def main() -> None:
    import byom_cli.teradata  # noqa: F401  (registers `byom teradata`)

    app()


if __name__ == "__main__":
    main()
