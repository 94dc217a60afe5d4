-- Every API instance caches live sessions (who, which tenant, which role). A logout, a
-- refresh-token reuse, a re-role or a removal must reach all of them at once: each instance
-- LISTENs on this channel and drops the sessions named in the payload.
CREATE FUNCTION "notify_access_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changed RECORD;
BEGIN
  IF TG_OP = 'INSERT' THEN
    changed := NEW;
  ELSE
    changed := OLD;
  END IF;
  IF TG_TABLE_NAME = 'Session' THEN
    PERFORM pg_notify('fleet_access_changes', 'session:' || changed."id"::text);
  ELSE
    PERFORM pg_notify('fleet_access_changes', 'membership:' || changed."userId"::text || ':' || changed."tenantId"::text);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "Session_notify_change"
AFTER UPDATE OR DELETE ON "Session"
FOR EACH ROW EXECUTE FUNCTION "notify_access_change"();

CREATE TRIGGER "Membership_notify_change"
AFTER INSERT OR UPDATE OR DELETE ON "Membership"
FOR EACH ROW EXECUTE FUNCTION "notify_access_change"();
