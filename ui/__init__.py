"""The web app's shared pieces: guards, labels and the widgets and views pages compose.

Pages (``app_pages/``) are thin: a guard, widgets, calls into ``phone_core.ui_api``,
``ui_batches`` and ``ui_admin``, and these helpers to render what comes back. Nothing
here imports httpx, boto3 or SQLAlchemy, and nothing here keeps core data (tables, rows,
pre-flights, runs) in the session state.
"""
