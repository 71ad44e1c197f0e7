"""HTTP handlers: one Controller per feature, each reading input and calling a service."""
