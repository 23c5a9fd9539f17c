"""REST API: thin Tornado handlers over the services."""
