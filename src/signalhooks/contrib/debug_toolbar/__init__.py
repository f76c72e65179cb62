"""A django-debug-toolbar panel: what signalhooks did for the request.

``pip install "django-signalhooks[debug-toolbar]"``, then add
``"signalhooks.contrib.debug_toolbar.panel.SignalhooksPanel"`` to ``DEBUG_TOOLBAR_PANELS``.
"""
