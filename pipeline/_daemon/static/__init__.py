"""Package data: the web page served at ``GET /`` (a package so wheels include it)."""
