"""S1–S8 — staff UI routes: MFA, security settings, audit trail, break-glass, attachments."""

from django.urls import path

from rapport.access.views import audit, mfa, records, settings

app_name = "access"

urlpatterns = [
    path("mfa/setup/", mfa.setup, name="mfa-setup"),
    path("mfa/setup/qr.svg", mfa.qr_code, name="mfa-qr"),
    path("mfa/verify/", mfa.verify, name="mfa-verify"),
    path("mfa/recovery-codes/", mfa.recovery_codes, name="mfa-recovery-codes"),
    path("account/security/", mfa.account_security, name="account-security"),
    path("audit/", audit.search, name="audit-search"),
    path("audit/verify/", audit.verify, name="audit-verify"),
    path("people/<uuid:pk>/break-glass/", records.break_glass, name="break-glass"),
    path("people/<uuid:pk>/demographics/", records.demographics, name="demographics"),
    path("records/<str:object_type>/<uuid:pk>/attachments/", records.attachments, name="attachments"),
    path("records/<str:object_type>/<uuid:pk>/share/", records.share, name="share"),
    path("records/<str:object_type>/<uuid:pk>/restrict/", records.restrict_record, name="restrict"),
    path("records/<str:object_type>/<uuid:pk>/history/", records.history, name="history"),
    path("shares/<uuid:pk>/remove/", records.unshare, name="unshare"),
    path("attachments/<uuid:pk>/", records.attachment_download, name="attachment-download"),
    path("attachments/<uuid:pk>/delete/", records.attachment_delete, name="attachment-delete"),
    path("settings/", settings.index, name="settings"),
    path("settings/roles/new/", settings.role_edit, name="role-create"),
    path("settings/roles/<uuid:pk>/", settings.role_edit, name="role-edit"),
    path("settings/roles/<uuid:pk>/delete/", settings.role_delete, name="role-delete"),
    path("settings/roles/<uuid:pk>/fields/", settings.role_fields, name="role-fields"),
    path("settings/teams/new/", settings.team_edit, name="team-create"),
    path("settings/teams/<uuid:pk>/", settings.team_edit, name="team-edit"),
    path("settings/teams/<uuid:pk>/delete/", settings.team_delete, name="team-delete"),
    path("settings/users/", settings.user_list, name="user-list"),
    path("settings/users/<uuid:pk>/", settings.user_edit, name="user-edit"),
    path("settings/sharing/", settings.sharing, name="sharing"),
    path("settings/sharing/rules/new/", settings.rule_edit, name="rule-create"),
    path("settings/sharing/rules/<uuid:pk>/", settings.rule_edit, name="rule-edit"),
    path("settings/sharing/rules/<uuid:pk>/delete/", settings.rule_delete, name="rule-delete"),
]
