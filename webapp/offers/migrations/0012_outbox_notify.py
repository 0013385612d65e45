from django.db import migrations

NOTIFY = """
CREATE OR REPLACE FUNCTION gpubroker_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gpubroker_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION gpubroker_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS event_outbox_notify ON event_outbox;
DROP FUNCTION IF EXISTS gpubroker_outbox_notify();
"""


class Migration(migrations.Migration):
    """Every insert into the outbox notifies channel `gpubroker_outbox` (once per statement; PostgreSQL
    delivers it when the transaction commits, and folds repeats within one transaction): the outbox
    relay (gpubroker.relay) wakes on it and publishes the landing's events at once."""

    dependencies = [
        ("offers", "0011_webhook_allowlist_owner"),
    ]

    operations = [migrations.RunSQL(NOTIFY, DROP)]
