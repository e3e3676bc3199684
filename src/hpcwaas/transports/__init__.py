"""Where commands run: on this host (``local``) and, later, over SSH."""
