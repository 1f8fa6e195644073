# Capability callback URLs (WebSub S-7). Rows from 1.1 get no token here (NULL): they keep
# their old URL until their next renewal moves them. The column is added without a default,
# then given one for new rows: a default while adding would give every old row one shared
# token.
from django.db import migrations, models

import django_push.subscriber.capability


class Migration(migrations.Migration):

    dependencies = [
        ("subscriber", "0004_unique_hub_topic"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="callback_token",
            field=models.CharField(
                blank=True, editable=False, max_length=64, null=True, verbose_name="callback token"
            ),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="callback_token",
            field=models.CharField(
                blank=True,
                default=django_push.subscriber.capability.new_callback_token,
                editable=False,
                max_length=64,
                null=True,
                verbose_name="callback token",
            ),
        ),
        migrations.AddField(
            model_name="subscription",
            name="legacy_callback",
            field=models.URLField(
                blank=True,
                editable=False,
                max_length=1023,
                verbose_name="1.1 callback to unsubscribe",
            ),
        ),
        migrations.AddField(
            model_name="subscription",
            name="legacy_moved_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="moved off the 1.1 callback"
            ),
        ),
    ]
