-- Score with models installed as files (`byom teradata deploy --models churn_v3,churn_v4`),
-- each row naming its model in model_id. Printed by
--   byom teradata sql --input customers --columns "id INTEGER, model_id VARCHAR(30), age FLOAT, income FLOAT" \
--       --database mydb --model-column model_id --models churn_v3,churn_v4 --delivery file \
--       --accumulate id --outputs score
SET SESSION SEARCHUIFDBPATH = mydb;
SELECT * FROM Script(
	ON (SELECT t.id, t.model_id, CAST(CAST(t.age AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS age, CAST(CAST(t.income AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS income FROM customers t) AS "input"
	PARTITION BY ANY
	
	SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_score.py --columns ''id:INTEGER,model_id:VARCHAR(30),age:FLOAT,income:FLOAT'' --model-column model_id --model-file churn_v3=./mydb/byom_5d41402abc4b2a76 --model-file churn_v4=./mydb/byom_7d793037a0760186 --accumulate id --outputs score')
	delimiter('	')
	returns('id INTEGER, score FLOAT')
) as sqlmr;
