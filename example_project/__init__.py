"""A runnable project around rindle_tus.

Its Celery app is ``example_project.celery`` (``celery -A example_project``
finds it there). It is not imported here, as Django's Celery recipe would,
because the web processes never send tasks: leaving it out keeps Celery out
of every gunicorn worker.
"""
