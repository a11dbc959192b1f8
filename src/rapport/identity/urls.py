"""U — staff UI routes of identity resolution (mounted at /identity/)."""

from django.urls import path

from rapport.identity import views

app_name = "identity"
urlpatterns = [
    path("duplicates/", views.queue, name="queue"),
    path("duplicates/<uuid:pk>/", views.pair, name="pair"),
    path("duplicates/<uuid:pk>/merge/", views.merge, name="merge"),
    path("duplicates/<uuid:pk>/reject/", views.reject, name="reject"),
    path("merges/<uuid:pk>/unmerge/", views.unmerge, name="unmerge"),
]
