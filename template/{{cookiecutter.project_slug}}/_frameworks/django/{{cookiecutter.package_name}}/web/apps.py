from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "{{ cookiecutter.package_name }}.web"
    label = "web"
    verbose_name = "Sign-in and web APIs"
