{{ (cookiecutter.project_name ~ ": a web app that signs users in and calls web APIs for them.") | tojson }}
