"""Model providers. Each is a plugin registered through `botical_register_providers`."""
