from django.db import migrations, models


class Migration(migrations.Migration):
    """How an offer's GPUs are connected, how its price is bought, and (aggregators) whose cloud runs it."""

    dependencies = [
        ("offers", "0009_offer_previous_values"),
    ]

    operations = [
        migrations.AddField(
            model_name="offer",
            name="interconnect",
            field=models.CharField(
                choices=[("nvlink", "nvlink"), ("infiniband", "infiniband"), ("roce", "roce"),
                         ("infinity_fabric", "infinity_fabric"), ("pcie", "pcie")],
                max_length=16, null=True,
            ),
        ),
        migrations.AddField(
            model_name="offer",
            name="pricing_type",
            field=models.CharField(
                choices=[("on_demand", "on_demand"), ("spot", "spot"), ("reserved", "reserved")],
                default="on_demand", max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="offer",
            name="commitment_months",
            field=models.SmallIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="offer",
            name="cloud",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name="offer",
            index=models.Index(fields=["pricing_type", "gpu_model"], name="offers_pricing_gpu_idx"),
        ),
    ]
