"""Optional integrations; nothing else in signalhooks imports them."""
