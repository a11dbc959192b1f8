from django.urls import path

from rapport.core import views

urlpatterns = [path("", views.home, name="home")]
