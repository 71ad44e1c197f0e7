"""Business rules and queries. Handlers call these; only these touch the tables."""
