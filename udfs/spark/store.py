"""The model table in Spark: a catalog table or a Parquet path, with DuckDB's columns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from byom.errors import ModelTableError
from byom.formats import check_size
from byom.store import MODEL_TABLE_COLUMNS, ModelRecord, ModelStore
from udfs.spark._engine import import_pyspark

#: The full layout; a table with just model_id STRING and model BINARY also works.
SPARK_SCHEMA = (
    "model_id STRING, model BINARY, format STRING, sha256 STRING, size_bytes BIGINT, "
    "created_at TIMESTAMP, description STRING, inputs STRING, input_schema STRING, "
    "output_schema STRING"
)


def is_path(table: str) -> bool:
    """A Parquet location (`/data/models`, `s3a://b/models`) rather than a catalog name."""
    return "/" in table or "\\" in table or table.endswith(".parquet")


@dataclass(frozen=True)
class ModelVersion:
    """One model id as the table holds it now: the hash of its bytes and its input map."""

    model_id: str
    sha256: str
    inputs: str | None


class SparkModelStore(ModelStore):
    """A model table read and written through a SparkSession."""

    def __init__(self, spark: Any, table: str = "byom_models") -> None:
        import_pyspark()
        self.spark = spark
        self.table = table

    # -- reads ------------------------------------------------------------------------------
    def exists(self) -> bool:
        if is_path(self.table):
            jvm = self.spark._jvm
            path = jvm.org.apache.hadoop.fs.Path(self.table)
            fs = path.getFileSystem(self.spark._jsc.hadoopConfiguration())
            return bool(fs.exists(path))
        return bool(self.spark.catalog.tableExists(self.table))

    def dataframe(self) -> Any:
        """The table as a DataFrame, read afresh (new files and catalog changes included)."""
        from pyspark.errors import AnalysisException

        if not self.exists():
            raise ModelTableError(
                f"model table {self.table} does not exist: create it with `byom models add "
                f"MODEL_FILE --id ID --spark-table {self.table}` or SparkModelStore.add()"
            )
        try:
            if is_path(self.table):
                df = self.spark.read.parquet(self.table)
            else:
                self.spark.catalog.refreshTable(self.table)
                df = self.spark.table(self.table)
        except AnalysisException as exc:
            raise ModelTableError(f"cannot read model table {self.table}: {exc}") from None
        cols = {c.lower() for c in df.columns}
        if not {"model_id", "model"} <= cols:
            raise ModelTableError(
                f"table {self.table} is not a model table: it needs columns model_id STRING "
                f"and model BINARY (it has {', '.join(sorted(cols)) or 'no columns'})"
            )
        return df

    def versions(self) -> dict[str, ModelVersion]:
        """Each model's content hash, computed by Spark from the bytes themselves.

        A stored sha256 column is not trusted: a blob replaced by hand without it would be
        served stale, the failure byom exists to avoid. Only hashes reach the driver.
        """
        from pyspark.sql import functions as F

        df = self.dataframe()
        has_inputs = "inputs" in {c.lower() for c in df.columns}
        inputs = F.col("inputs") if has_inputs else F.lit(None).cast("string")
        rows = df.select(
            "model_id", F.sha2("model", 256), inputs, F.octet_length("model")
        ).collect()
        found: dict[str, ModelVersion] = {}
        for model_id, sha, input_map, size in rows:
            if model_id is None or sha is None:
                raise ModelTableError(
                    f"model table {self.table} has a row with a NULL model_id or model: "
                    "delete it or give it an id and bytes"
                )
            check_size(size, model_id, self.table)  # before any bytes reach the driver
            if model_id in found:
                raise ModelTableError(
                    f"model id {model_id!r} appears more than once in {self.table}: remove the "
                    "duplicates (`byom models add --replace` keeps one row per id)"
                )
            found[model_id] = ModelVersion(model_id, sha, input_map)
        return found

    def blobs(self, sha256s: set[str]) -> dict[str, bytes]:
        """Model bytes by content hash, for hashes the caller has not seen yet."""
        from pyspark.sql import functions as F

        if not sha256s:
            return {}
        df = self.dataframe().select(F.sha2("model", 256).alias("sha"), "model")
        rows = df.where(F.col("sha").isin(sorted(sha256s))).dropDuplicates(["sha"]).collect()
        return {sha: bytes(blob) for sha, blob in rows}

    def model_ids(self) -> list[str]:
        return sorted(self.versions())

    def list(self) -> list[dict[str, Any]]:
        from pyspark.sql import functions as F

        df = self.dataframe()
        cols = {c.lower() for c in df.columns}
        wanted = [F.col(c) for c in MODEL_TABLE_COLUMNS if c in cols and c != "model"]
        if "size_bytes" not in cols:
            wanted.append(F.octet_length("model").alias("size_bytes"))
        return [r.asDict() for r in df.select(*wanted).orderBy("model_id").collect()]

    # -- writes -----------------------------------------------------------------------------
    def _count(self, model_id: str) -> int:
        if not self.exists():
            return 0
        df = self.dataframe()
        return int(df.where(df.model_id == model_id).count())

    def _write(self, record: ModelRecord, replacing: bool) -> None:
        if not self.exists():
            self._save(self.spark.createDataFrame([record.row()], SPARK_SCHEMA), "create")
            return
        df = self.dataframe()
        values = dict(zip(MODEL_TABLE_COLUMNS, record.row(), strict=True))
        row = tuple(values.get(c.lower()) for c in df.columns)
        if not replacing:
            self._save(self.spark.createDataFrame([row], df.schema), "append")
            return
        kept = [tuple(r) for r in df.where(df.model_id != record.model_id).collect()]
        self._save(self.spark.createDataFrame([*kept, row], df.schema), "overwrite")

    def _delete(self, model_id: str) -> None:
        df = self.dataframe()
        kept = [tuple(r) for r in df.where(df.model_id != model_id).collect()]
        self._save(self.spark.createDataFrame(kept, df.schema), "overwrite")

    def _save(self, df: Any, how: str) -> None:
        """Write rows held on the driver (never a plan that reads the table being replaced)."""
        if not is_path(self.table):
            if how == "create":
                df.write.format("parquet").saveAsTable(self.table)
            else:
                df.write.insertInto(self.table, overwrite=how == "overwrite")
            self.spark.catalog.refreshTable(self.table)
            return
        if how != "overwrite":
            df.coalesce(1).write.mode("append").parquet(self.table)
            return
        # Write the new table beside the old, then swap: a failed write leaves the old intact.
        jvm = self.spark._jvm
        target = jvm.org.apache.hadoop.fs.Path(self.table)
        staged = jvm.org.apache.hadoop.fs.Path(f"{self.table.rstrip('/')}.byom-{uuid.uuid4().hex}")
        fs = target.getFileSystem(self.spark._jsc.hadoopConfiguration())
        df.coalesce(1).write.parquet(staged.toString())
        fs.delete(target, True)
        if not fs.rename(staged, target):
            raise ModelTableError(
                f"could not move the rewritten model table from {staged.toString()} to "
                f"{self.table}; move it by hand"
            )
