"""`idportrait serve`: the web demo server (the UI is `idportrait.serve.app`)."""
