"""Key stores: where private keys live. Embedded (AES-GCM in the database) or HashiCorp Vault."""
