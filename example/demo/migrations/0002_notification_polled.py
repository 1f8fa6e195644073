from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("demo", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="polled",
            field=models.BooleanField(default=False),
        ),
    ]
