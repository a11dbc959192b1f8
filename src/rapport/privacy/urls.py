"""U — staff screens of the privacy core (C1–C8), and the public double opt-in page."""

from django.urls import path

from rapport.privacy import views

app_name = "privacy"

urlpatterns = [
    path("requests/", views.request_list, name="request-list"),
    path("requests/new/", views.request_create, name="request-create"),
    path("requests/<uuid:pk>/", views.request_detail, name="request-detail"),
    path("requests/<uuid:pk>/<slug:action>/", views.request_action, name="request-action"),
    path("people/<uuid:pk>/consent/", views.consent_record, name="consent-record"),
    path("people/<uuid:pk>/consents/", views.consent_history, name="consent-history"),
    path("people/<uuid:pk>/receipts/<uuid:receipt_id>/", views.consent_receipt, name="consent-receipt"),
    path("people/<uuid:pk>/preferences/", views.preferences_edit, name="preferences-edit"),
    path("people/<uuid:pk>/export/", views.person_export, name="person-export"),
    path("people/<uuid:pk>/check/", views.gate_check, name="gate-check"),
    path("people/<uuid:pk>/status/<slug:action>/", views.person_status, name="person-status"),
    path("legal-holds/<uuid:pk>/release/", views.legal_hold_release, name="legal-hold-release"),
    path("confirm/<str:token>/", views.consent_confirm, name="consent-confirm"),
    path("processing-record/", views.processing_record_view, name="processing-record"),
    path("suppression/", views.suppression_view, name="suppression"),
    path("suppression/<int:pk>/remove/", views.suppression_remove, name="suppression-remove"),
    path("retention/", views.retention_view, name="retention"),
    path("retention/run/", views.retention_run, name="retention-run"),
    path("retention/<uuid:pk>/", views.retention_policy_edit, name="retention-policy"),
    path("security-notices/", views.security_notice, name="security-notice"),
]
