"""The example project under an ASGI server (uvicorn, granian, daphne):
rindle_tus's entry point, so tus bodies stream as they do under WSGI."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from rindle_tus.asgi import get_asgi_application

application = get_asgi_application()
