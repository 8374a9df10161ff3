"""The dashboard: a read-only web app over the status store, the market store and the pipeline.

``app.create_app`` builds the Starlette app (pages, JSON API under ``/api/``,
server-sent events, ``/metrics``); ``server.serve`` runs it with uvicorn and
refuses to listen beyond loopback without a token. ``history`` and
``market_data`` hold its read-only queries, ``charts`` its inline SVG,
``security`` the token, the allowed hosts and the redaction of secrets.

Importing this package imports nothing heavy: ``orchestrator.metrics`` reads
the run history through ``orchestrator.web.history``.
"""
