"""Generation over many identities and prompts (`idportrait generate-batch`) and PNG seed metadata."""
