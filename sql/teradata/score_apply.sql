-- VantageCloud Lake: score with APPLY in a user environment holding byom's files (created by
-- `byom teradata deploy --env byom_env`), the model carried inline from byom_models. Printed by
--   byom teradata sql --operator apply --env byom_env --input customers \
--       --columns "id INTEGER, age FLOAT, income FLOAT" --database mydb --model-id churn_v3 --accumulate id
SELECT * FROM Apply(
	ON (SELECT d.id, CAST(CAST(d.age AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS age, CAST(CAST(d.income AS FORMAT '-9.9999999999999999E-999') AS VARCHAR(32)) AS income, d.byom_part, d.byom_row, CASE WHEN d.byom_row = 1 THEN m.model_b64 END AS byom_model FROM (SELECT t.id, t.age, t.income, HASHBUCKET(HASHROW(t.id)) MOD (HASHAMP() + 1) AS byom_part, ROW_NUMBER() OVER (PARTITION BY HASHBUCKET(HASHROW(t.id)) MOD (HASHAMP() + 1) ORDER BY t.id) AS byom_row FROM customers t) d LEFT JOIN byom_models m ON m.model_id = 'churn_v3') AS "input"
	PARTITION BY "byom_part"
	ORDER BY "byom_row" ASC NULLS FIRST
	
	returns(id INTEGER, prediction VARCHAR(256), json_report VARCHAR(32000))
	USING
	
	APPLY_COMMAND('python3 byom_score.py --columns id:INTEGER,age:FLOAT,income:FLOAT,byom_part:INTEGER,byom_row:BIGINT,byom_model:CLOB --model-id churn_v3 --model-data-column byom_model --accumulate id --quotechar ''"'' --delimiter , --operator apply')
	ENVIRONMENT('byom_env')
	STYLE('csv')
	delimiter(',')
	quotechar('"') 
) as sqlmr;
