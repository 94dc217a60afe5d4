-- Every API instance caches tenants (status, schema, plan). A change must reach all of them at
-- once: a suspension takes effect on the next request, not when a cache entry expires. Each
-- instance LISTENs on this channel and drops the entry named in the payload.
CREATE FUNCTION "notify_tenant_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fleet_tenant_changes', OLD.id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER "Tenant_notify_change"
AFTER UPDATE OR DELETE ON "Tenant"
FOR EACH ROW EXECUTE FUNCTION "notify_tenant_change"();
