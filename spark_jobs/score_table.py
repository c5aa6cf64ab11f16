"""Score a table with a model from a byom model table and write the result as Parquet.

    spark-submit spark_jobs/score_table.py \\
        --models /data/byom_models --input /data/customers --model-id churn_v3 \\
        --keep id,region --output /data/customers_scored

The input is a Parquet path or a catalog table; the model is one id (`--model-id`) or a
column naming each row's model (`--model-column`). Every input row yields one output row:
the pass-through columns (`--keep`) and the result column. Row counts in and out are printed,
and the job fails (exit 1) if they differ.

Exit codes: 0 success; 2 bad arguments or input found before scoring (unknown model, missing
column, unreadable input or model table); 1 a failure while scoring (for example an invalid
value), with byom's message.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

USAGE_ERROR = 2
SCORING_ERROR = 1


class JobError(Exception):
    """A problem found before scoring starts: bad arguments, input or model table."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="score_table.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--input", required=True, help="Parquet path or catalog table to score")
    p.add_argument("--models", required=True, help="byom model table: catalog name or path")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-id", help="score every row with this model")
    which.add_argument("--model-column", help="column naming each row's model")
    p.add_argument("--output", required=True, help="Parquet path to write")
    p.add_argument("--keep", default="", help="comma-separated columns to pass through")
    p.add_argument(
        "--function",
        choices=["score", "predict", "predict_json"],
        default="score",
        help="score (a number), predict (label, score, probabilities) or predict_json",
    )
    p.add_argument("--result-column", default=None, help="name of the result (default: FUNCTION)")
    p.add_argument("--partition-by", default="", help="comma-separated output partition columns")
    p.add_argument(
        "--mode",
        choices=["errorifexists", "overwrite"],
        default="errorifexists",
        help="what to do when --output exists",
    )
    return p.parse_args(argv)


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def read_input(spark: Any, source: str) -> Any:
    from udfs.spark.store import is_path

    try:
        return spark.read.parquet(source) if is_path(source) else spark.table(source)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JobError(f"cannot read input {source}: {first}") from None


def find_column(df: Any, name: str, what: str) -> str:
    """The input's spelling of a column (Spark matches names case-insensitively)."""
    for col in df.columns:
        if col.lower() == name.lower():
            return str(col)
    close = difflib.get_close_matches(name, df.columns, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise JobError(
        f"{what} column {name!r} is not in the input{hint} (columns: {', '.join(df.columns)})"
    )


def check_model_inputs(registration: Any, model_id: str, df: Any) -> None:
    """Fail before any scoring if the input lacks a column the model needs."""
    from byom.errors import MissingColumnError

    needed = registration.catalog.input_columns(model_id)
    have = {c.lower() for c in df.columns}
    missing = [c for c in needed if c.lower() not in have]
    if missing:
        raise JobError(str(MissingColumnError(model_id, missing, df.columns)))


def run(args: argparse.Namespace, spark: Any) -> int:
    from pyspark.sql import functions as F

    from byom.errors import ByomError, UnknownModelError
    from byom.outputs import OutputKind
    from udfs.spark import byom_error, register

    try:
        registration = register(spark, args.models)
    except ByomError as exc:
        raise JobError(str(exc)) from None
    df = read_input(spark, args.input)
    keep = [find_column(df, c, "--keep") for c in _columns(args.keep)]
    if args.model_id is not None:
        if args.model_id not in registration.models:
            known = registration.model_ids()
            raise JobError(str(UnknownModelError(args.model_id, known, args.models)))
        check_model_inputs(registration, args.model_id, df)
        model = F.lit(args.model_id)
    else:
        model = df[find_column(df, args.model_column, "--model-column")]
    result = args.result_column or args.function
    partition_by = [find_column(df, c, "--partition-by") for c in _columns(args.partition_by)]
    for col in partition_by:
        if col not in keep:
            raise JobError(f"--partition-by column {col!r} must also be listed in --keep")
    row = F.struct(*[df[c] for c in df.columns])
    udf = registration.udfs[OutputKind(args.function)]
    scored = df.select(*[df[c] for c in keep], udf(model, row).alias(result))

    rows_in = df.count()
    print(f"rows in:  {rows_in:,} from {args.input}", flush=True)
    try:
        writer = scored.write.mode(args.mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(args.output)
    except Exception as exc:
        err = byom_error(exc)
        if err is None:
            raise
        print(f"score_table.py: error while scoring: {err}", file=sys.stderr)
        return SCORING_ERROR
    rows_out = spark.read.parquet(args.output).count()
    print(f"rows out: {rows_out:,} to {args.output}", flush=True)
    if rows_out != rows_in:
        print(
            f"score_table.py: error: {rows_in:,} rows in but {rows_out:,} rows out",
            file=sys.stderr,
        )
        return SCORING_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("byom score_table").getOrCreate()
    try:
        return run(args, spark)
    except JobError as exc:
        print(f"score_table.py: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
