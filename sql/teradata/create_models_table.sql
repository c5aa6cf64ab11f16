-- byom's model table in Teradata. model_id and model are the columns Teradata BYOM's
-- PMMLPredict / ONNXPredict read, so one table serves both. model_b64 holds the same bytes as
-- base64 text: SCRIPT receives its input as text, and byom's inline delivery puts this text on
-- the first row of each partition. `byom teradata deploy --upload-to byom_models` fills it.
CREATE TABLE byom_models (
    model_id    VARCHAR(128) CHARACTER SET LATIN NOT NULL,
    model       BLOB(2097088000),
    model_b64   CLOB(2097088000) CHARACTER SET LATIN,
    sha256      CHAR(64) CHARACTER SET LATIN,
    format      VARCHAR(16) CHARACTER SET LATIN,
    created_at  TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)
) UNIQUE PRIMARY INDEX (model_id);
