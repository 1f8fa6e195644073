from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("demo", "0002_notification_polled")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="sequence",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
    ]
