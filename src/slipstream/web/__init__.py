"""The web UI: server-rendered pages (Jinja2 templates, a vendored htmx, our own CSS and JS)
served beside the REST API on the same port. Like the API, it speaks to services only."""
