"""The project's URLs: the web app's routes, and its error pages for Django's 400/403/404/500."""

from django.urls import include, path

urlpatterns = [
    path("", include("{{ cookiecutter.package_name }}.web.urls")),
]

handler400 = "{{ cookiecutter.package_name }}.web.views.bad_request"
handler403 = "{{ cookiecutter.package_name }}.web.views.forbidden"
handler404 = "{{ cookiecutter.package_name }}.web.views.not_found"
handler500 = "{{ cookiecutter.package_name }}.web.views.server_error"
