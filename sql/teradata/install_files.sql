-- Install byom's SCRIPT files, as `byom teradata deploy --database mydb` prints them (it writes
-- the files to ./byom_teradata and, given --host, runs these statements through teradataml).
-- Paths are on the client ('c'); 'z' installs text, 'b' binary. Replace with
-- SYSUIF.replace_file(id, name, path, 1) when upgrading (`deploy --replace`).
DATABASE mydb;
SET SESSION SEARCHUIFDBPATH = mydb;
call SYSUIF.install_file('byom_score', 'byom_score.py', 'cz!byom_teradata/byom_score.py');
call SYSUIF.install_file('byom_core', 'byom_core.zip', 'cb!byom_teradata/byom_core.zip');
call SYSUIF.install_file('byom_check', 'byom_check.py', 'cz!byom_teradata/byom_check.py');
-- File delivery only: each model as a file named by its content hash (a replaced model gets a
-- new name, so a query can never read a stale file).
call SYSUIF.install_file('byom_77ec17e876e03168', 'byom_77ec17e876e03168', 'cb!byom_teradata/byom_77ec17e876e03168');
