"""The example project under an ASGI server (uvicorn, granian, daphne):
rindle_tus's entry point, so tus bodies stream as they do under WSGI."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
# On PostgreSQL, a pool in place of persistent connections, which ASGI never
# reuses (see DATABASE_POOL in settings.py): connections per process.
os.environ.setdefault("DATABASE_POOL", "16")

from rindle_tus.asgi import get_asgi_application

application = get_asgi_application()
