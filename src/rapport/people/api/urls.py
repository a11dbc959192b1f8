"""A1 — /api/v1/ routes of the people app (P1–P3)."""

from django.urls import path

from rapport.people.api import views

urlpatterns = [
    path("people/", views.PersonList.as_view(), name="person-list"),
    path("people/<uuid:pk>/", views.PersonDetail.as_view(), name="person-detail"),
    path("people/<uuid:pk>/contact-points/", views.ContactPointList.as_view(), name="person-contact-points"),
    path("contact-points/<uuid:pk>/", views.ContactPointDetail.as_view(), name="contact-point-detail"),
    path("organisations/", views.OrganisationList.as_view(), name="organisation-list"),
    path("organisations/<uuid:pk>/", views.OrganisationDetail.as_view(), name="organisation-detail"),
    path("employments/", views.EmploymentList.as_view(), name="employment-list"),
    path("employments/<uuid:pk>/", views.EmploymentDetail.as_view(), name="employment-detail"),
    path("interactions/", views.InteractionList.as_view(), name="interaction-list"),
    path("interactions/<uuid:pk>/", views.InteractionDetail.as_view(), name="interaction-detail"),
]
