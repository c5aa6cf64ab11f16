-- Many models in one query: each row names its model in model_id, and --partition-key model_id
-- makes each model's rows one partition (the bucket follows the model id), so each model is
-- scored on one AMP and each AMP's script decodes and loads only its own models. Keep the
-- default partition key for a few models with many rows each. Printed by
--   byom teradata sql --input customers --columns "id INTEGER, model_id VARCHAR(30), age FLOAT, income FLOAT" \
--       --database mydb --model-column model_id --models churn_v3,churn_v4 --partition-key model_id \
--       --accumulate id --outputs score
SET SESSION SEARCHUIFDBPATH = mydb;
SELECT * FROM Script(
	ON (SELECT d.id, d.model_id, CAST(CAST(d.age AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS age, CAST(CAST(d.income AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS income, d.byom_part, d.byom_row, CASE WHEN d.byom_row = 1 THEN m.model_b64 END AS byom_model FROM (SELECT t.id, t.model_id, t.age, t.income, HASHBUCKET(HASHROW(t.model_id)) MOD (HASHAMP() + 1) AS byom_part, ROW_NUMBER() OVER (PARTITION BY t.model_id, HASHBUCKET(HASHROW(t.model_id)) MOD (HASHAMP() + 1) ORDER BY t.model_id) AS byom_row FROM customers t) d LEFT JOIN byom_models m ON m.model_id = d.model_id) AS "input"
	PARTITION BY "model_id","byom_part"
	ORDER BY "byom_row" ASC NULLS FIRST
	
	SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_score.py --columns ''id:INTEGER,model_id:VARCHAR(30),age:FLOAT,income:FLOAT,byom_part:INTEGER,byom_row:BIGINT,byom_model:CLOB'' --model-column model_id --model-data-column byom_model --accumulate id --outputs score')
	delimiter('	')
	returns('id INTEGER, score FLOAT')
) as sqlmr;
