from django.urls import path

from .views import TusUploadsView, TusUploadView

app_name = "rindle_tus"

urlpatterns = [
    path("", TusUploadsView.as_view(), name="uploads"),
    path("<path:upload_id>", TusUploadView.as_view(), name="upload"),
]
