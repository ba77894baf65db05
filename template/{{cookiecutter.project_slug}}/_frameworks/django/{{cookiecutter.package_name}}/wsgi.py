"""The production entry point:

    gunicorn -c gunicorn.conf.py {{ cookiecutter.package_name }}.wsgi:application

Built at import, so that gunicorn (which preloads it) stops at start-up with the list of
settings to fix.
"""

from .web.services import create_app

application = create_app()
