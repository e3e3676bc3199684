"""The use cases behind the routes and the admin command: executions, SSH keys, cluster
identities, audit. They raise the errors of ``errors``, never HTTP answers."""
