# When the subscriber's periodic task last ran on each task backend (the health view's beat).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriber', '0007_pending_secret'),
    ]

    operations = [
        migrations.CreateModel(
            name='RenewalBeat',
            fields=[
                ('backend', models.CharField(max_length=100, primary_key=True, serialize=False, verbose_name='task backend')),
                ('beat_at', models.DateTimeField(verbose_name='last beat')),
            ],
            options={
                'verbose_name': 'renewal beat',
            },
        ),
    ]
