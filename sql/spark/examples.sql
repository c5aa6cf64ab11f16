-- Scoring queries for Spark SQL, after udfs.spark.register(spark, models_table="byom_models").
-- byom's entry points (udfs.spark.sql(spark, query), spark_jobs/score_table.py) also accept
-- `*` as the row argument and first pick up models added or replaced in the table; a plain
-- spark.sql uses the native forms below, with the models as of register() or refresh().

-- The whole row, matched to the model's inputs by name (extra columns such as id are ignored).
-- `score(model_id, *)` is rewritten to this form by byom's SQL entry points.
SELECT id, score(model_id, struct(*)) AS churn_probability FROM customers;

-- The columns of one table of a join, by name.
SELECT c.id, score('churn_v3', struct(c.*)) AS churn_probability FROM customers c;

-- Positional: values in the model's input order. Spark's own `score('m', *)` is positional
-- too (Spark drops the names); a count that does not match the model says to use struct(*).
SELECT id, score('churn_v3', x) AS churn_probability FROM customers;

-- A model per row: rows are grouped by model inside each batch.
SELECT c.id, score(s.model_id, struct(c.*)) AS p
FROM customers c JOIN segment_models s ON s.segment = c.segment;

-- Many models: each model's rows to one task (a Python worker loads fewer models), sorted so
-- each Arrow batch holds a run of models; CLUSTER BY model_id says the same. Spark drops the
-- sort below an aggregate (README: Spark, Many models).
SELECT id, score(model_id, struct(*)) AS p
FROM (SELECT * FROM customers DISTRIBUTE BY model_id SORT BY model_id);

-- Label, score and per-class probabilities; every model output as JSON.
SELECT id, p.label, p.score, p.probabilities['1'] AS p1
FROM (SELECT id, predict('churn_v3', struct(*)) AS p FROM customers);
SELECT id, get_json_object(predict_json('churn_v3', struct(*)), '$.label') AS label
FROM customers;

-- Which version scores: the content hash of each model's bytes.
SELECT model_id, format, sha2(model, 256) AS sha256, size_bytes, created_at
FROM byom_models ORDER BY model_id;
