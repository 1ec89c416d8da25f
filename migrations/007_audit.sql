-- Who ran each execution, where, with which build and command line (arguments without
-- secrets): the provenance an audit of a run's results needs. NULL for executions
-- recorded before this migration.
ALTER TABLE executions ADD COLUMN tool_version TEXT;
ALTER TABLE executions ADD COLUMN host TEXT;
ALTER TABLE executions ADD COLUMN os_user TEXT;
ALTER TABLE executions ADD COLUMN command_line TEXT;
