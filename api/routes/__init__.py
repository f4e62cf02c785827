"""REST routes under `/api`, one module per resource; thin: parse, authorise, call the
clinic service, return a pydantic model."""
