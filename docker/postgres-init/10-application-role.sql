-- Runs once, when the PostgreSQL container initialises its data folder (docker-entrypoint-initdb.d),
-- as the superuser POSTGRES_USER, connected to POSTGRES_DB.
--
-- The API's own role, with no more than the README's DATABASE_URL row asks for: no superuser,
-- CREATEROLE (it creates one role per tenant), CONNECT and CREATE on the database (it creates the
-- platform schema and one schema per tenant). CONNECT is taken from PUBLIC, so only roles granted
-- it may connect; the API holds CONNECT WITH GRANT OPTION to grant it to each tenant role it
-- creates. The password is for local use only, like every secret in docker-compose.yml.
-- (Plain SQL, no psql variables: tests/integration/compose-database-role.test.ts runs this file.)
CREATE ROLE fleet_app LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD 'fleet-app-local-password';

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO fleet_app WITH GRANT OPTION', current_database());
  EXECUTE format('GRANT CREATE ON DATABASE %I TO fleet_app', current_database());
  EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
