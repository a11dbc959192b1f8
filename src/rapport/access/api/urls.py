from django.urls import path

from rapport.access.api import views as access_views

urlpatterns: list = []

# S1/S5/S8 — added by the access-control work (separate module: rapport.access.api.views).
urlpatterns += [
    path("me/", access_views.MeView.as_view(), name="me"),
    path("attachments/", access_views.AttachmentListView.as_view(), name="attachment-list"),
    path("attachments/<uuid:pk>/", access_views.AttachmentDetailView.as_view(), name="attachment-detail"),
    path("attachments/<uuid:pk>/content/", access_views.AttachmentContentView.as_view(),
         name="attachment-content"),
    path("audit/", access_views.AuditListView.as_view(), name="audit-list"),
]
