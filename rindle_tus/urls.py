from django.db import transaction
from django.urls import path

from .views import TusUploadsView, TusUploadView

app_name = "rindle_tus"

# Never inside ATOMIC_REQUESTS' transaction: the lease and every commit must
# be seen by other requests at once, and a PATCH must not hold a transaction
# open while its body streams.
urlpatterns = [
    path("", transaction.non_atomic_requests(TusUploadsView.as_view()), name="uploads"),
    path("<path:upload_id>", transaction.non_atomic_requests(TusUploadView.as_view()), name="upload"),
]
