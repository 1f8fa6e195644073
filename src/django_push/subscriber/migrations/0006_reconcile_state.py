# Reconciliation (PUSH_SUBSCRIBER_RECONCILE): the last content's hash, the topic's
# validators, when it was and will be polled. Every column has a default: no row to rewrite.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriber', '0005_callback_token'),
    ]

    operations = [
        migrations.AddField(
            model_name='subscription',
            name='content_hash',
            field=models.CharField(blank=True, editable=False, max_length=64, verbose_name='SHA-256 of the last content'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='etag',
            field=models.CharField(blank=True, editable=False, max_length=255, verbose_name='ETag of the topic'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='last_modified',
            field=models.CharField(blank=True, editable=False, max_length=64, verbose_name='Last-Modified of the topic'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='last_poll_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='last poll'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='last_poll_error',
            field=models.TextField(blank=True, editable=False, verbose_name='last poll error'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='next_poll_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='next poll'),
        ),
        migrations.AddField(
            model_name='subscription',
            name='reconcile_seconds',
            field=models.PositiveIntegerField(blank=True, help_text='Empty: PUSH_SUBSCRIBER_RECONCILE. 0: never.', null=True, verbose_name='poll the topic every (seconds)'),
        ),
        migrations.AddIndex(
            model_name='subscription',
            index=models.Index(fields=['next_poll_at'], name='subscriber_next_poll'),
        ),
    ]
