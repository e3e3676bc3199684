"""The REST server: FastAPI app factory, routes, and the `hpcwaas-api` command."""
