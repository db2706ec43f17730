CREATE TRIGGER {{name}} AFTER {{operation}} ON {{table}} {{referencing}}FOR EACH STATEMENT EXECUTE FUNCTION {{function}}()
