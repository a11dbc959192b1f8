"""U — staff UI routes for people, organisations and the global search."""

from django.urls import path

from rapport.people import views

app_name = "people"

urlpatterns = [
    path("search/", views.search, name="search"),
    path("people/", views.person_list, name="person-list"),
    path("people/new/", views.person_create, name="person-create"),
    path("people/<uuid:pk>/", views.person_detail, name="person-detail"),
    path("people/<uuid:pk>/edit/", views.person_edit, name="person-edit"),
    path("people/<uuid:pk>/timeline/", views.person_timeline, name="person-timeline"),
    path("people/<uuid:pk>/interactions/", views.interaction_create, name="interaction-create"),
    path("people/<uuid:pk>/contact-points/", views.contact_point_add, name="contact-point-add"),
    path("people/<uuid:pk>/contact-points/<uuid:point_pk>/edit/", views.contact_point_edit,
         name="contact-point-edit"),
    path("people/<uuid:pk>/contact-points/<uuid:point_pk>/remove/", views.contact_point_remove,
         name="contact-point-remove"),
    path("people/<uuid:pk>/jobs/", views.employment_start, name="employment-start"),
    path("people/<uuid:pk>/jobs/<uuid:job_pk>/end/", views.employment_end, name="employment-end"),
    path("organisations/", views.organisation_list, name="organisation-list"),
    path("organisations/new/", views.organisation_create, name="organisation-create"),
    path("organisations/pick/", views.organisation_pick, name="organisation-pick"),
    path("organisations/<uuid:pk>/", views.organisation_detail, name="organisation-detail"),
    path("organisations/<uuid:pk>/edit/", views.organisation_edit, name="organisation-edit"),
]
