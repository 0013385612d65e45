from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0001_api_keys'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='admin',
            field=models.BooleanField(db_default=False),
        ),
    ]
