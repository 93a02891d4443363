"""The rollups app takes over its models from usage: state only. The tables were made by
usage's migrations and keep their names (each model's Meta.db_table), so no data moves;
a database made fresh gets the same tables from usage's migrations. usage's
0012_models_moved then drops them from usage's state."""

import django.db.models.deletion
import django.db.models.functions.comparison
import django.utils.timezone
from decimal import Decimal
import functools

from django.db import migrations, models


def content_types_move(apps, schema_editor, *, models, old, new):
    """The moved models' content types follow them (admin log entries, permissions)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    ContentType.objects.using(db).filter(app_label=old, model__in=models).update(app_label=new)


MODELS = ['jobbucket', 'jobdaily', 'matchingbucket', 'matchingdaily', 'querybucket', 'querydaily', 'restatement', 'rolluphour', 'rollupstate', 'workerbucket', 'workerdaily']


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('usage', '0011_spend_keys_lead_with_organization'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='JobBucket',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('bucket', models.DateTimeField()),
                        ('submitted', models.IntegerField(default=0)),
                        ('completed', models.IntegerField(default=0)),
                        ('running', models.IntegerField(default=0)),
                        ('failed', models.IntegerField(default=0)),
                        ('cancelled', models.IntegerField(default=0)),
                        ('core_hours', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=18)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('wasted_core_hours', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=18)),
                        ('wasted_credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('last_submitted_at', models.DateTimeField()),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('controller', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='usage.controller')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_jobbucket',
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('bucket'), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), django.db.models.functions.comparison.Coalesce('controller', models.Value(0)), name='job_bucket_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='JobDaily',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('hour', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('submitted', models.PositiveIntegerField(default=0)),
                        ('completed', models.PositiveIntegerField(default=0)),
                        ('running', models.PositiveIntegerField(default=0)),
                        ('failed', models.PositiveIntegerField(default=0)),
                        ('cancelled', models.PositiveIntegerField(default=0)),
                        ('core_hours', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=18)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('wasted_core_hours', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=18)),
                        ('wasted_credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('last_submitted_at', models.DateTimeField()),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('controller', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='usage.controller')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'verbose_name_plural': 'job dailies',
                        'db_table': 'usage_jobdaily',
                        'ordering': ['-day'],
                        'indexes': [models.Index(condition=models.Q(('hour__isnull', True)), fields=['organization', 'day'], name='job_rollup_day'), models.Index(condition=models.Q(('hour__isnull', False)), fields=['organization', 'day', 'hour'], name='job_rollup_hour')],
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('day'), django.db.models.functions.comparison.Coalesce('hour', models.Value(-1)), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), django.db.models.functions.comparison.Coalesce('controller', models.Value(0)), name='job_daily_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='MatchingBucket',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('bucket', models.DateTimeField()),
                        ('task', models.CharField(choices=[('IDR', 'Identity resolution (IDR)'), ('CDM', 'Customer data matching (CDM)')], max_length=3)),
                        ('runs', models.IntegerField(default=0)),
                        ('num_records', models.BigIntegerField(default=0)),
                        ('run_time_seconds', models.DecimalField(decimal_places=3, default=0, max_digits=18)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_matchingbucket',
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('bucket'), models.F('task'), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='matching_bucket_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='MatchingDaily',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('hour', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('task', models.CharField(choices=[('IDR', 'Identity resolution (IDR)'), ('CDM', 'Customer data matching (CDM)')], max_length=3)),
                        ('runs', models.PositiveIntegerField(default=0)),
                        ('num_records', models.PositiveBigIntegerField(default=0)),
                        ('run_time_seconds', models.DecimalField(decimal_places=3, default=0, max_digits=18)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'verbose_name_plural': 'matching dailies',
                        'db_table': 'usage_matchingdaily',
                        'ordering': ['-day'],
                        'indexes': [models.Index(condition=models.Q(('hour__isnull', True)), fields=['organization', 'day'], name='matching_rollup_day'), models.Index(condition=models.Q(('hour__isnull', False)), fields=['organization', 'day', 'hour'], name='matching_rollup_hour')],
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('day'), django.db.models.functions.comparison.Coalesce('hour', models.Value(-1)), models.F('task'), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='matching_daily_dims')],
                    },
                ),
                migrations.CreateModel(
                    name='QueryBucket',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('bucket', models.DateTimeField()),
                        ('dimension', models.CharField(choices=[('detail', 'Model × API key × endpoint × member'), ('model', 'Model'), ('endpoint', 'Endpoint'), ('member', 'Member')], max_length=10)),
                        ('endpoint', models.CharField(blank=True, default='', max_length=200)),
                        ('member', models.CharField(blank=True, default='', max_length=254)),
                        ('queries', models.IntegerField(default=0)),
                        ('input_tokens', models.BigIntegerField(default=0)),
                        ('output_tokens', models.BigIntegerField(default=0)),
                        ('total_tokens', models.BigIntegerField(default=0)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.pricemodel')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_querybucket',
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('dimension'), models.F('bucket'), models.F('endpoint'), models.F('member'), django.db.models.functions.comparison.Coalesce('model', models.Value(0)), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='query_bucket_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='QueryDaily',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('hour', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('dimension', models.CharField(choices=[('detail', 'Model × API key × endpoint × member'), ('model', 'Model'), ('endpoint', 'Endpoint'), ('member', 'Member')], max_length=10)),
                        ('endpoint', models.CharField(blank=True, default='', max_length=200)),
                        ('member', models.CharField(blank=True, default='', max_length=254)),
                        ('queries', models.PositiveIntegerField(default=0)),
                        ('input_tokens', models.PositiveBigIntegerField(default=0)),
                        ('output_tokens', models.PositiveBigIntegerField(default=0)),
                        ('total_tokens', models.PositiveBigIntegerField(default=0)),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.pricemodel')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'verbose_name_plural': 'query dailies',
                        'db_table': 'usage_querydaily',
                        'ordering': ['-day'],
                        'indexes': [models.Index(condition=models.Q(('hour__isnull', True)), fields=['organization', 'dimension', 'day'], name='query_rollup_day'), models.Index(condition=models.Q(('hour__isnull', False)), fields=['organization', 'dimension', 'day', 'hour'], name='query_rollup_hour')],
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('day'), models.F('dimension'), models.F('endpoint'), models.F('member'), django.db.models.functions.comparison.Coalesce('hour', models.Value(-1)), django.db.models.functions.comparison.Coalesce('model', models.Value(0)), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='query_daily_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='Restatement',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('kind', models.CharField(max_length=20)),
                        ('dimension', models.JSONField()),
                        ('before', models.JSONField(blank=True, null=True)),
                        ('after', models.JSONField(blank=True, null=True)),
                        ('restated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_restatement',
                        'ordering': ['-restated_at', '-id'],
                        'indexes': [models.Index(fields=['organization', 'day'], name='restatement_org_day')],
                    },
                ),
                migrations.CreateModel(
                    name='RollupHour',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('hour', models.PositiveSmallIntegerField()),
                        ('time_zone', models.CharField(blank=True, default='', max_length=64)),
                        ('dirty', models.BooleanField(default=True)),
                        ('dirtied_at', models.DateTimeField(blank=True, null=True)),
                        ('computed_at', models.DateTimeField(blank=True, null=True)),
                        ('rows', models.PositiveIntegerField(default=0)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_rolluphour',
                        'ordering': ['-day', '-hour'],
                        'indexes': [models.Index(condition=models.Q(('dirty', True)), fields=['dirty', 'organization', 'day'], name='rollup_hour_dirty')],
                        'constraints': [models.UniqueConstraint(fields=('organization', 'day', 'hour'), name='rollup_hour_per_hour')],
                    },
                ),
                migrations.CreateModel(
                    name='RollupState',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('time_zone', models.CharField(blank=True, default='', max_length=64)),
                        ('dirty', models.BooleanField(default=True)),
                        ('dirtied_at', models.DateTimeField(blank=True, null=True)),
                        ('computed_at', models.DateTimeField(blank=True, null=True)),
                        ('rows', models.PositiveIntegerField(default=0)),
                        ('duration_ms', models.PositiveIntegerField(default=0)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_rollupstate',
                        'ordering': ['-day'],
                        'indexes': [models.Index(condition=models.Q(('dirty', True)), fields=['dirty', 'organization', 'day'], name='rollup_state_dirty')],
                        'constraints': [models.UniqueConstraint(fields=('organization', 'day'), name='rollup_state_per_day')],
                    },
                ),
                migrations.CreateModel(
                    name='WorkerBucket',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('bucket', models.DateTimeField()),
                        ('sessions_started', models.IntegerField(default=0)),
                        ('sessions_carried_in', models.IntegerField(default=0)),
                        ('runtime', models.DurationField()),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.pricemodel')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'usage_workerbucket',
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('bucket'), models.F('model'), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='worker_bucket_dimensions')],
                    },
                ),
                migrations.CreateModel(
                    name='WorkerDaily',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('hour', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('sessions_started', models.PositiveIntegerField(default=0)),
                        ('sessions_carried_in', models.PositiveIntegerField(default=0)),
                        ('runtime', models.DurationField()),
                        ('credits', models.DecimalField(decimal_places=10, default=Decimal('0'), max_digits=24)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey')),
                        ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='billing.pricemodel')),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'verbose_name_plural': 'worker dailies',
                        'db_table': 'usage_workerdaily',
                        'ordering': ['-day'],
                        'indexes': [models.Index(condition=models.Q(('hour__isnull', True)), fields=['organization', 'day'], name='worker_rollup_day'), models.Index(condition=models.Q(('hour__isnull', False)), fields=['organization', 'day', 'hour'], name='worker_rollup_hour')],
                        'constraints': [models.UniqueConstraint(models.F('organization'), models.F('day'), django.db.models.functions.comparison.Coalesce('hour', models.Value(-1)), models.F('model'), django.db.models.functions.comparison.Coalesce('api_key', models.Value(0)), name='worker_daily_dims')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            functools.partial(content_types_move, models=MODELS, old="usage", new="rollups"),
            functools.partial(content_types_move, models=MODELS, old="rollups", new="usage"),
        ),
    ]
