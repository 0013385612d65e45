from django.db import migrations, models


class Migration(migrations.Migration):
    """Each allowed webhook host has one owner: an API key, a plan, or (neither) the operator's own
    webhooks; rows that existed before stay the operator's."""

    dependencies = [
        ("offers", "0010_offer_interconnect_pricing_type"),
        ("gateway", "0001_api_keys"),
    ]

    operations = [
        migrations.AlterField(model_name="webhookallowedhost", name="host", field=models.CharField(max_length=253)),
        migrations.AddField(
            model_name="webhookallowedhost",
            name="key",
            field=models.ForeignKey(blank=True, null=True, on_delete=models.CASCADE, related_name="webhook_hosts",
                                    to="gateway.apikey"),
        ),
        migrations.AddField(
            model_name="webhookallowedhost",
            name="plan",
            field=models.CharField(blank=True, max_length=16, null=True,
                                   choices=[("free", "free"), ("pro", "pro"), ("enterprise", "enterprise"),
                                            ("unlimited", "unlimited")]),
        ),
        migrations.AddConstraint(
            model_name="webhookallowedhost",
            constraint=models.UniqueConstraint(fields=["host", "key", "plan"], name="webhook_allowlist_once",
                                               nulls_distinct=False),
        ),
        migrations.AddConstraint(
            model_name="webhookallowedhost",
            constraint=models.CheckConstraint(condition=models.Q(key__isnull=True) | models.Q(plan__isnull=True),
                                              name="webhook_allowlist_one_owner"),
        ),
    ]
