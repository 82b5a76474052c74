"""The worker side: load a DAG file, run one try of one task, capture its log and its outcome."""
