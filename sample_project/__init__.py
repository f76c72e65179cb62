"""A small blog that shows every signalhooks feature: ``make demo`` serves it."""
