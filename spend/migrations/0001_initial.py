"""The spend app takes over its models from usage: state only. The tables were made by
usage's migrations and keep their names (each model's Meta.db_table), so no data moves;
a database made fresh gets the same tables from usage's migrations. usage's
0012_models_moved then drops them from usage's state."""

import django.db.models.deletion
import django.db.models.functions.comparison
import django.utils.timezone
import spend.models
from decimal import Decimal
from django.conf import settings
import functools

from django.db import migrations, models


def content_types_move(apps, schema_editor, *, models, old, new):
    """The moved models' content types follow them (admin log entries, permissions)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    ContentType.objects.using(db).filter(app_label=old, model__in=models).update(app_label=new)


MODELS = ['budget', 'keypause', 'overcap', 'ratelimitrefusal', 'reservation', 'spendday', 'spendhold']


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('usage', '0011_spend_keys_lead_with_organization'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Budget',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(choices=[('organization', 'Organization'), ('api_key', 'API key'), ('member', 'Member')], max_length=20)),
                        ('member', models.CharField(blank=True, default='', max_length=254)),
                        ('period', models.CharField(choices=[('day', 'Day'), ('week', 'Week'), ('month', 'Calendar month')], max_length=10)),
                        ('soft_limit', models.DecimalField(decimal_places=10, max_digits=24)),
                        ('hard_limit', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                        ('thresholds', models.JSONField(default=spend.models.budget_thresholds_default)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='budgets', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_budget',
                        'ordering': ['scope', 'member', 'api_key_id', 'period', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='KeyPause',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('paused_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                        ('paused_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'usage_keypause',
                    },
                ),
                migrations.CreateModel(
                    name='OverCap',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reason', models.CharField(choices=[('budget', 'Over a hard budget'), ('allocation', 'Past the free allocation'), ('reservation', 'Past its reservation')], max_length=12)),
                        ('member', models.CharField(blank=True, default='', max_length=254)),
                        ('records', models.IntegerField(default=0)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('uncharged_credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.apikey')),
                        ('batch', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='usage.ingestbatch')),
                        ('budget', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='spend.budget')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_overcap',
                    },
                ),
                migrations.CreateModel(
                    name='RateLimitRefusal',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('minute', models.DateTimeField()),
                        ('count', models.PositiveIntegerField(default=0)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_ratelimitrefusal',
                        'ordering': ['-minute'],
                    },
                ),
                migrations.CreateModel(
                    name='Reservation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('public_id', models.CharField(max_length=40)),
                        ('member', models.CharField(blank=True, default='', max_length=254)),
                        ('endpoint', models.CharField(blank=True, default='', max_length=200)),
                        ('credits', models.DecimalField(decimal_places=10, max_digits=24)),
                        ('tokens', models.BigIntegerField()),
                        ('status', models.CharField(choices=[('held', 'Held'), ('settled', 'Settled'), ('expired', 'Expired')], default='held', max_length=10)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('expires_at', models.DateTimeField()),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('settled_credits', models.DecimalField(blank=True, decimal_places=10, max_digits=24, null=True)),
                        ('record_id', models.CharField(blank=True, default='', max_length=200)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.apikey')),
                        ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.pricemodel')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_reservation',
                    },
                ),
                migrations.CreateModel(
                    name='SpendDay',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('dimension', models.CharField(max_length=1)),
                        ('subject', models.CharField(blank=True, default='', max_length=254)),
                        ('day', models.DateField()),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('tokens', models.BigIntegerField(default=0)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_spendday',
                    },
                ),
                migrations.CreateModel(
                    name='SpendHold',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('dimension', models.CharField(max_length=1)),
                        ('subject', models.CharField(blank=True, default='', max_length=254)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('tokens', models.BigIntegerField(default=0)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_spendhold',
                    },
                ),
                migrations.AddConstraint(
                    model_name='budget',
                    constraint=models.CheckConstraint(condition=models.Q(('soft_limit__gte', 0)), name='budget_soft_nonneg'),
                ),
                migrations.AddConstraint(
                    model_name='budget',
                    constraint=models.CheckConstraint(condition=models.Q(('hard_limit__isnull', True), ('hard_limit__gte', 0), _connector='OR'), name='budget_hard_nonneg'),
                ),
                migrations.AddConstraint(
                    model_name='budget',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('api_key__isnull', True), ('member', ''), ('scope', 'organization')), models.Q(('api_key__isnull', False), ('member', ''), ('scope', 'api_key')), models.Q(('api_key__isnull', True), ('scope', 'member'), models.Q(('member', ''), _negated=True)), _connector='OR'), name='budget_scope_subject'),
                ),
                migrations.AddConstraint(
                    model_name='budget',
                    constraint=models.UniqueConstraint(models.F('organization'), models.F('scope'), models.F('member'), models.F('period'), django.db.models.functions.comparison.Coalesce('api_key', 0), name='budget_one_per_subject_period'),
                ),
                migrations.AddConstraint(
                    model_name='keypause',
                    constraint=models.UniqueConstraint(fields=('organization', 'api_key'), name='key_pause_once'),
                ),
                migrations.AddIndex(
                    model_name='overcap',
                    index=models.Index(fields=['organization', 'at'], name='overcap_org_at'),
                ),
                migrations.AddIndex(
                    model_name='ratelimitrefusal',
                    index=models.Index(fields=['organization', 'minute'], name='refusal_org_time'),
                ),
                migrations.AddConstraint(
                    model_name='ratelimitrefusal',
                    constraint=models.UniqueConstraint(fields=('organization', 'api_key', 'minute'), name='refusal_per_key_minute'),
                ),
                migrations.AddIndex(
                    model_name='reservation',
                    index=models.Index(condition=models.Q(('status', 'held')), fields=['organization', 'expires_at'], name='reservation_held_expiry'),
                ),
                migrations.AddConstraint(
                    model_name='reservation',
                    constraint=models.UniqueConstraint(fields=('organization', 'public_id'), name='reservation_public_id_unique'),
                ),
                migrations.AddConstraint(
                    model_name='reservation',
                    constraint=models.CheckConstraint(condition=models.Q(('credits__gte', 0)), name='reservation_nonneg'),
                ),
                migrations.AddConstraint(
                    model_name='spendday',
                    constraint=models.UniqueConstraint(fields=('organization', 'dimension', 'subject', 'day'), name='spend_day_subject'),
                ),
                migrations.AddConstraint(
                    model_name='spendhold',
                    constraint=models.UniqueConstraint(fields=('organization', 'dimension', 'subject'), name='spend_hold_subject'),
                ),
                migrations.AddConstraint(
                    model_name='spendhold',
                    constraint=models.CheckConstraint(condition=models.Q(('credits__gte', 0)), name='spend_hold_nonneg'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            functools.partial(content_types_move, models=MODELS, old="usage", new="spend"),
            functools.partial(content_types_move, models=MODELS, old="spend", new="usage"),
        ),
    ]
