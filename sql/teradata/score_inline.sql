-- Score with the model carried inline: each partition's first row holds the model's base64
-- text from byom_models, so nothing but byom's two files is installed. Printed by
--   byom teradata sql --input customers --columns "id INTEGER, age FLOAT, income FLOAT" \
--       --database mydb --model-id churn_v3 --accumulate id
SET SESSION SEARCHUIFDBPATH = mydb;
SELECT * FROM Script(
	ON (SELECT d.id, CAST(CAST(d.age AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS age, CAST(CAST(d.income AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS income, d.byom_part, d.byom_row, CASE WHEN d.byom_row = 1 THEN m.model_b64 END AS byom_model FROM (SELECT t.id, t.age, t.income, HASHBUCKET(HASHROW(t.id)) MOD (HASHAMP() + 1) AS byom_part, ROW_NUMBER() OVER (PARTITION BY HASHBUCKET(HASHROW(t.id)) MOD (HASHAMP() + 1) ORDER BY t.id) AS byom_row FROM customers t) d LEFT JOIN byom_models m ON m.model_id = 'churn_v3') AS "input"
	PARTITION BY "byom_part"
	ORDER BY "byom_row" ASC NULLS FIRST
	
	SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_score.py --columns id:INTEGER,age:FLOAT,income:FLOAT,byom_part:INTEGER,byom_row:BIGINT,byom_model:CLOB --model-id churn_v3 --model-data-column byom_model --accumulate id')
	delimiter('	')
	returns('id INTEGER, prediction VARCHAR(256), json_report VARCHAR(32000)')
) as sqlmr;
