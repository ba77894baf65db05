"""The app package: it signs users in and calls web APIs for them (see README.md)."""
