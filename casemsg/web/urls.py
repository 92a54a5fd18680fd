from django.urls import path

from casemsg.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("errors/", views.errors_page, name="errors"),
]
