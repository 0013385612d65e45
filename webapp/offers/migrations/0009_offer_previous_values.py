from django.db import migrations, models


class Migration(migrations.Migration):
    """The old price and availability an upsert replaced, kept on the row (gpubroker.store reads them
    back through RETURNING instead of looking offers up)."""

    dependencies = [
        ("offers", "0008_outbox_published_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="offer",
            name="previous_price",
            field=models.DecimalField(decimal_places=4, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="offer",
            name="previous_availability",
            field=models.CharField(max_length=16, null=True),
        ),
    ]
