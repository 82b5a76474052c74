"""The HTTP API: translates HTTP to service calls and back, and nothing else.

`create_app(services)` builds the app; there is no module-level app.
"""
