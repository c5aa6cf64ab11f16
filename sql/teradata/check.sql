-- Which of byom's packages the database's Python imports, as `byom teradata check --database mydb
-- --env byom_env` prints it (tests/test_teradata_deploy.py compares this file with that output).
-- Run it after `byom teradata deploy` installed byom_check.py. One row per package: its version
-- ("missing" when it does not import), the models that need it (all, or ONNX only), a status
-- (ok, missing, broken, too old) and the fix. SCRIPT (Vantage Enterprise) has no ON clause, so
-- every AMP runs the check: each node's tdpython3 is its own install, and rows repeat per AMP.
-- APPLY (VantageCloud Lake) runs in the user environment `byom teradata deploy --env` filled.
SET SESSION SEARCHUIFDBPATH = mydb;
SELECT * FROM Script(
	
	SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_check.py')
	delimiter('	')
	returns('package VARCHAR(32), version VARCHAR(64), needed_for VARCHAR(16), status VARCHAR(16), fix VARCHAR(512)')
) as sqlmr;
SELECT * FROM Apply(
	ON (SELECT 1 AS x) AS "input"
	PARTITION BY ANY
	
	returns(package VARCHAR(32), version VARCHAR(64), needed_for VARCHAR(16), status VARCHAR(16), fix VARCHAR(512))
	USING
	
	APPLY_COMMAND('python3 byom_check.py --operator apply')
	ENVIRONMENT('byom_env')
	STYLE('csv')
	delimiter(',') 
) as sqlmr;
