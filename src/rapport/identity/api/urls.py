"""A1 — /api/v1/identity/ routes."""

from django.urls import path

from rapport.identity.api import views

urlpatterns = [
    path("suggestions/", views.SuggestionList.as_view(), name="identity-suggestions"),
    path("suggestions/<uuid:pk>/reject/", views.SuggestionReject.as_view(), name="identity-suggestion-reject"),
    path("not-duplicates/", views.NotDuplicateCreate.as_view(), name="identity-not-duplicates"),
    path("merges/", views.MergeList.as_view(), name="identity-merges"),
    path("merges/<uuid:pk>/unmerge/", views.Unmerge.as_view(), name="identity-unmerge"),
    path("candidates/", views.CandidateCheck.as_view(), name="identity-candidates"),
]
