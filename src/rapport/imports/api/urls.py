"""A3 — /api/v1/imports/…"""

from django.urls import path

from rapport.imports.api import views

urlpatterns = [
    path("", views.ImportListCreate.as_view(), name="import-list"),
    path("targets/", views.Targets.as_view(), name="import-targets"),
    path("mappings/", views.MappingList.as_view(), name="import-mapping-list"),
    path("mappings/<uuid:pk>/", views.MappingDetail.as_view(), name="import-mapping-detail"),
    path("export/people/", views.ExportView.as_view(what="people"), name="export-people"),
    path("export/organisations/", views.ExportView.as_view(what="organisations"), name="export-organisations"),
    path("<uuid:pk>/", views.ImportDetail.as_view(), name="import-detail"),
    path("<uuid:pk>/preview/", views.ImportAction.as_view(action_name="preview"), name="import-preview"),
    path("<uuid:pk>/run/", views.ImportAction.as_view(action_name="run"), name="import-run"),
    path("<uuid:pk>/undo/", views.ImportAction.as_view(action_name="undo"), name="import-undo"),
    path("<uuid:pk>/issues/", views.ImportIssues.as_view(), name="import-issues"),
    path("<uuid:pk>/errors.csv", views.ImportErrorFile.as_view(), name="import-errors"),
]
