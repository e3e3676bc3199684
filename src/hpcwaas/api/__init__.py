"""The wire contract shared by the server, the SDK and the CLI.

Nothing here imports another hpcwaas package: the models are the REST API's
JSON shapes, the state enums and the error envelope.
"""
