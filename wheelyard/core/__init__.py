"""Pure domain logic: no web framework, ORM or cloud SDK imports here."""
