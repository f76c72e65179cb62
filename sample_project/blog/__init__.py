"""The blog: posts, comments and accounts, kept fresh by signalhooks (see hooks.py)."""
