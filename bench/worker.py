"""The portal's Celery app with counters, for bench/renewals.py: `celery -A bench.worker worker`.

Each worker process counts the SQL queries and Stripe requests of every task and adds them,
per task name, to a Redis hash the benchmark reads (BENCH_COUNTERS_KEY); nothing else changes.
"""

import os
import time
from collections import Counter

import redis
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import connection

from billing_portal.celery import app  # noqa: F401  (the app celery -A loads)

_counts: Counter = Counter()
_started: dict[str, float] = {}


def _count_query(execute, sql, params, many, context):
    _counts["queries"] += 1
    return execute(sql, params, many, context)


@worker_process_init.connect
def _install(**kwargs):
    from subscriptions import gateway

    connection.execute_wrappers.append(_count_query)
    call = gateway._call

    def counted_call(*args, **kw):
        _counts["stripe"] += 1
        return call(*args, **kw)

    gateway._call = counted_call


@task_prerun.connect
def _start(task_id=None, **kwargs):
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _flush(task_id=None, task=None, retval=None, **kwargs):
    seconds = time.perf_counter() - _started.pop(task_id, time.perf_counter())
    name = task.name.rsplit(".", 1)[-1]
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    key = os.environ["BENCH_COUNTERS_KEY"]
    pipe = client.pipeline()
    pipe.hincrby(key, f"{name}:tasks", 1)
    pipe.hincrby(key, f"{name}:queries", _counts["queries"])
    pipe.hincrby(key, f"{name}:stripe", _counts["stripe"])
    pipe.hincrbyfloat(key, f"{name}:seconds", seconds)
    pipe.execute()
    _counts.clear()
