-- byom's model table in DuckDB. `byom models add` and udfs.duckdb.register() create it the same
-- way; any table with just model_id and model (Teradata BYOM's layout) also works.
CREATE TABLE IF NOT EXISTS byom_models (
    model_id      VARCHAR PRIMARY KEY,   -- first argument of score() / predict() / predict_json()
    model         BLOB NOT NULL,         -- the ONNX or PMML file, byte for byte
    format        VARCHAR NOT NULL,      -- 'onnx' or 'pmml', detected from the bytes
    sha256        VARCHAR NOT NULL,      -- content hash: caches are keyed by it, never by id
    size_bytes    BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL,    -- UTC
    description   VARCHAR,
    inputs        VARCHAR,               -- input map (JSON: model input -> table columns), or NULL
    input_schema  VARCHAR,               -- JSON: the model's inputs and the columns feeding them
    output_schema VARCHAR                -- JSON: task, target, classes, output names
);
