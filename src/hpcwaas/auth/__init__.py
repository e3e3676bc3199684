"""Who is calling: bearer tokens issued by this server, local password accounts, basic auth."""
