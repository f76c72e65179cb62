"""Load and fault test: the sample project under gunicorn, PostgreSQL and a Redis we break.

``python -m loadtest.run --short`` (``make loadtest-short``, CI) or ``--full``
(``make loadtest``); see loadtest/README.md.
"""
