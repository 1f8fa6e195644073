# 1.1 had no unique (hub, topic) constraint, so its databases may hold duplicates.
# Keep one row per pair (the verified one with the latest lease, else the newest),
# and mark 1.1's unverified rows as awaiting verification of a subscription.
# A row without a lease counts as older than any dated one, on every database: a
# descending order puts NULL first on PostgreSQL and last on SQLite unless told.
from django.db import migrations
from django.db.models import F


def merge_duplicates(apps, schema_editor):
    Subscription = apps.get_model("subscriber", "Subscription")
    db = schema_editor.connection.alias
    rows = Subscription.objects.using(db).order_by(
        "hub", "topic", "-verified", F("lease_expiration").desc(nulls_last=True), "-pk"
    )
    keep = {}
    drop = []
    for row in rows.iterator():
        key = (row.hub, row.topic)
        if key in keep:
            drop.append(row.pk)
        else:
            keep[key] = row.pk
    for start in range(0, len(drop), 500):
        Subscription.objects.using(db).filter(pk__in=drop[start : start + 500]).delete()
    Subscription.objects.using(db).filter(verified=False).update(pending="subscribe")


class Migration(migrations.Migration):

    dependencies = [("subscriber", "0002_websub_state")]

    operations = [migrations.RunPython(merge_duplicates, migrations.RunPython.noop)]
