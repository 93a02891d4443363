from celery import shared_task


@shared_task(name="console.worker_health")
def worker_health() -> dict:
    """Prove a worker is up and reaches the database: answers its name and the time there."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        (db_time,) = cursor.fetchone()
    return {"database": connection.settings_dict["NAME"], "db_time": str(db_time)}
