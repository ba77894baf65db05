"""The user table (web/models.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="User",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("password", models.CharField(max_length=128, verbose_name="password")),
                ("last_login", models.DateTimeField(blank=True, null=True,
                                                    verbose_name="last login")),
                ("key", models.CharField(max_length=400, unique=True)),
                ("issuer", models.CharField(max_length=300)),
                ("subject", models.CharField(max_length=200)),
                ("name", models.CharField(blank=True, max_length=300)),
                ("username", models.CharField(blank=True, max_length=300)),
                ("is_active", models.BooleanField(default=True)),
                ("date_joined", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("issuer", "subject"),
                                                        name="web_user_identity")],
            },
        ),
    ]
