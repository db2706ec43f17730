-- tally_reader: the read-only role Grafana uses. It may SELECT from
-- `reporting` and nothing else.
--
-- Roles are cluster-wide. When the role running the migrations may not create
-- roles, this migration warns and leaves the grants to a DBA; the SQL to run is
-- in docs/security.md.
DO $$
DECLARE
    may_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_reader') THEN
        IF NOT may_create THEN
            RAISE WARNING 'tally: role % may not create roles; tally_reader was not created. '
                'Ask a DBA to run the SQL in docs/security.md.', current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE tally_reader LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database
        END;
    END IF;

    EXECUTE 'GRANT USAGE ON SCHEMA reporting TO tally_reader';
    EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO tally_reader';
    -- Aggregates are created later by this same role; grant on them as they appear.
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO tally_reader';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'tally: could not grant tally_reader access to reporting (%); '
        'ask a DBA to run the SQL in docs/security.md.', SQLERRM;
END
$$;
