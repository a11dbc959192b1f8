"""A1 — /api/v1/privacy/ routes."""

from django.urls import path, re_path

from rapport.privacy.api import views

urlpatterns = [
    path("people/<uuid:pk>/consents/", views.ConsentList.as_view(), name="privacy-consents"),
    path("people/<uuid:pk>/consent-state/", views.ConsentStateView.as_view(), name="privacy-consent-state"),
    path("people/<uuid:pk>/preferences/", views.PreferencesView.as_view(), name="privacy-preferences"),
    path("people/<uuid:pk>/export/", views.PersonExportView.as_view(), name="privacy-export"),
    path("consent-receipts/<uuid:receipt_id>/", views.ConsentReceiptView.as_view(), name="privacy-receipt"),
    path("decide/", views.DecideView.as_view(), name="privacy-decide"),
    path("decide/batch/", views.DecideBatchView.as_view(), name="privacy-decide-batch"),
    path("requests/", views.RightsRequestList.as_view(), name="privacy-requests"),
    path("requests/<uuid:pk>/", views.RightsRequestDetail.as_view(), name="privacy-request"),
    path("requests/<uuid:pk>/<slug:action>/", views.RightsRequestAction.as_view(), name="privacy-request-action"),
    path("suppressions/", views.SuppressionView.as_view(), name="privacy-suppressions"),
    path("suppressions/check/", views.SuppressionCheckView.as_view(), name="privacy-suppression-check"),
    path("suppression-lists/", views.SuppressionListView.as_view(), name="privacy-suppression-lists"),
    path("notices/", views.NoticeView.as_view(), name="privacy-notices"),
    path("security-notices/", views.SecurityNoticeView.as_view(), name="privacy-security-notices"),
    path("retention/", views.RetentionReportView.as_view(), name="privacy-retention"),
    re_path(r"^processing-record/?$", views.ProcessingRecordView.as_view(), name="privacy-processing-record"),
]
