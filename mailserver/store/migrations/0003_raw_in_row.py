from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailserver_store", "0002_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboundmessage",
            name="raw",
            field=models.BinaryField(blank=True, editable=False, null=True),
        ),
    ]
