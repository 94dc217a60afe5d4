-- Every API instance caches the registered operations it has served by hash. Removing one (or a
-- tenant, whose operations cascade) must stop it running on all of them at once: the payload
-- names the operation's scope (tenant id or "global") and hash, and each instance drops it.
CREATE FUNCTION "notify_persisted_operation_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fleet_access_changes', 'persistedOperation:' || OLD."scope" || ':' || OLD."sha256");
  RETURN NULL;
END
$$;

CREATE TRIGGER "PersistedOperation_notify_change"
AFTER UPDATE OF "scope", "sha256", "document" OR DELETE ON "PersistedOperation"
FOR EACH ROW EXECUTE FUNCTION "notify_persisted_operation_change"();
