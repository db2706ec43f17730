-- Rescue, step 3 (writers held back): moves what is left of the month in the
-- default partition, including rows written meanwhile, and counts them.
-- Placeholders as in rescue_batch.sql.
WITH moved AS (DELETE FROM {{default}} WHERE {{key}} >= {{from}} AND {{key}} < {{to}} RETURNING {{columns}}),
     inserted AS (INSERT INTO {{partition}} ({{columns}}) SELECT {{columns}} FROM moved RETURNING 1)
SELECT count(*) FROM inserted
