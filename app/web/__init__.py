"""What every route module shares: page rendering and menus, request reading, lists and
pickers, the mapping of service errors to HTTP, and the Jinja filters."""
