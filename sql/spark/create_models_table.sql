-- byom's model table in a Spark catalog: the columns SparkModelStore writes (and DuckDB's).
-- A Parquet path needs no DDL: `byom models add MODEL --id ID --spark-table /path` creates it.
-- Any table with just model_id STRING and model BINARY also works.
CREATE TABLE IF NOT EXISTS byom_models (
    model_id      STRING,
    model         BINARY,
    format        STRING,
    sha256        STRING,
    size_bytes    BIGINT,
    created_at    TIMESTAMP,
    description   STRING,
    inputs        STRING,
    input_schema  STRING,
    output_schema STRING
) USING parquet
