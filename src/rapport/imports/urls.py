"""A3 — staff UI routes: the import wizard and the export page (mounted at /imports/)."""

from django.urls import path

from rapport.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.index, name="index"),
    path("export/", views.export, name="export"),
    path("export/download/", views.export_download, name="export-download"),
    path("<uuid:pk>/", views.detail, name="detail"),
    path("<uuid:pk>/map/", views.mapping, name="mapping"),
    path("<uuid:pk>/progress/", views.progress, name="progress"),
    path("<uuid:pk>/run/", views.run, name="run"),
    path("<uuid:pk>/undo/", views.undo, name="undo"),
    path("<uuid:pk>/errors.csv", views.error_file, name="errors"),
]
