-- byom's model table in Teradata. model_id and model are the columns Teradata BYOM's
-- PMMLPredict / ONNXPredict read, so one table serves both. model_b64 holds the same bytes as
-- base64 text: SCRIPT receives its input as text, and byom's inline delivery puts this text on
-- the first row of each partition. `byom teradata deploy --models a,b --upload-to byom_models`
-- creates this table when it is missing and writes each model with a parameterized INSERT (bytes
-- bound as BLOB, base64 as CLOB); with --replace it deletes the id's row first, in the same
-- transaction (the UNIQUE PRIMARY INDEX refuses a second row per id). created_at is left to its
-- DEFAULT. tests/test_teradata_deploy.py parses this file against the table byom creates.
CREATE TABLE byom_models (
    model_id    VARCHAR(128) CHARACTER SET LATIN NOT NULL,
    model       BLOB(2097088000),
    model_b64   CLOB(2097088000) CHARACTER SET LATIN,
    sha256      CHAR(64) CHARACTER SET LATIN,
    format      VARCHAR(16) CHARACTER SET LATIN,
    created_at  TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)
) UNIQUE PRIMARY INDEX (model_id);
