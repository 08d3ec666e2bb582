"""Web chat: the embeddable widget's server side, visitor sockets and chat routing (issue 10)."""
