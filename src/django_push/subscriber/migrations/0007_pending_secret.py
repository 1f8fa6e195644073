# A new secret waits in pending_secret until the hub verifies the request that carried it.
# A default of "": no row to rewrite.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriber', '0006_reconcile_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='subscription',
            name='pending_secret',
            field=models.CharField(blank=True, editable=False, max_length=255, verbose_name='secret awaiting verification'),
        ),
    ]
