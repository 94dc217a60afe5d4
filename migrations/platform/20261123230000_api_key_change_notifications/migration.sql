-- Every API instance caches the API keys it has seen. Revoking a key (or any other change that
-- decides what it may do) must reach all of them at once: the payload names the key's prefix,
-- and each instance drops that key. lastUsedAt is bookkeeping and notifies nobody.
CREATE FUNCTION "notify_api_key_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fleet_access_changes', 'apiKey:' || OLD."prefix");
  RETURN NULL;
END
$$;

CREATE TRIGGER "ApiKey_notify_change"
AFTER UPDATE OF "tenantId", "prefix", "secretHash", "role", "persistedOnly", "expiresAt", "revokedAt", "name" OR DELETE ON "ApiKey"
FOR EACH ROW EXECUTE FUNCTION "notify_api_key_change"();
