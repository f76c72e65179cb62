"""The blog of the documentation's running example: posts, comments, tags."""
