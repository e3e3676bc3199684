"""`waas`, the command-line client: one module per noun over the SDK in `hpcwaas.client`."""
