"""`idportrait serve`: the web demo server (the UI itself is `idportrait.app`)."""
