#!/usr/bin/env python
"""Django's command-line utility: `python manage.py migrate`, `check --deploy`, `runserver`."""

import os
import sys

from dotenv import load_dotenv


def main() -> None:
    load_dotenv()  # as the app does: a .env file in the working directory, real variables win
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
