CREATE TRIGGER tally_invalidate_truncate AFTER TRUNCATE ON {{partition}} FOR EACH STATEMENT EXECUTE FUNCTION {{function}}({{bounds}})
