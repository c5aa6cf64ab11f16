-- Scoring queries for DuckDB. Run them with `byom query` or udfs.duckdb.sql(con, ...), which
-- also accept `*` as the row argument; on a plain connection (after udfs.duckdb.register(con))
-- use the native forms below.

-- The whole row, matched to the model's inputs by name (extra columns such as id are ignored).
-- `score(model_id, *)` is rewritten to this form by byom's SQL entry points.
SELECT id, score(model_id, struct_pack(*COLUMNS(*))) AS churn_probability FROM customers;

-- The row struct of a table alias: the same, by name.
SELECT id, score('churn_v3', c) AS churn_probability FROM customers c;

-- Positional: values in the model's input order (up to 64 values).
SELECT id, score('churn_v3', *COLUMNS(* EXCLUDE (id, model_id))) FROM customers;

-- A model per row: rows are grouped by model inside each batch.
SELECT c.id, score(s.model_id, c) AS p
FROM customers c JOIN segment_models s ON s.segment = c.segment;

-- Many models: rows in model order (or a table stored so) reach the function model by model,
-- so each 2048-row chunk holds a run of models, each scored once (README: Many models in one
-- statement).
SELECT c.id, score(c.model_id, c) AS p FROM (SELECT * FROM customers ORDER BY model_id) c;

-- Label, score and per-class probabilities; every model output as JSON.
SELECT id, p.label, p.score, p.probabilities['1'] AS p1
FROM (SELECT id, predict('churn_v3', c) AS p FROM customers c);
SELECT id, predict_json('churn_v3', c) ->> 'label' AS label FROM customers c;

-- Which version scores: the model table's content hash, resolved per statement.
SELECT model_id, format, sha256, size_bytes, created_at FROM byom_models ORDER BY model_id;
