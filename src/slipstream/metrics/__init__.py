"""Prometheus metrics: each process's figures kept in a CollectorRegistry of its own (never the
library's global one), the database's counted at scrape time, and the HTTP server that serves
a scheduler's or a DAG processor's registry on --metrics-port."""
