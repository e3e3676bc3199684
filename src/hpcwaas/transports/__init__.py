"""Where commands run and files are read and written: this host (``local``), or over SSH."""
