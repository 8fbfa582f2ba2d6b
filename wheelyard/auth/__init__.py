"""Passwords, tokens, principals and permission checks."""
