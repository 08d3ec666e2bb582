"""An omnichannel contact center and service desk."""

__version__ = "0.1.0"
