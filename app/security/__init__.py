"""Security by concern: passwords, sessions (and the current user), guards, headers."""
