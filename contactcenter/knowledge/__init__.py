"""The knowledge base: articles, versions, Whoosh search, suggestions and the portal (issue 6)."""
