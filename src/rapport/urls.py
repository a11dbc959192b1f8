"""URL map: staff UI at /, API at /api/v1/, schema at /api/schema/, health at /healthz."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from rapport.core import views as core_views

api_v1 = [
    path("", include("rapport.people.api.urls")),
    path("", include("rapport.access.api.urls")),
    path("privacy/", include("rapport.privacy.api.urls")),
    path("identity/", include("rapport.identity.api.urls")),
    path("imports/", include("rapport.imports.api.urls")),
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("", include("rapport.core.urls")),
    path("", include("rapport.access.urls")),
    path("", include("rapport.people.urls")),
    path("privacy/", include("rapport.privacy.urls")),
    path("identity/", include("rapport.identity.urls")),
    path("imports/", include("rapport.imports.urls")),
]
