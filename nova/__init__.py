"""nova: an EC2-style cloud controller on Twisted, after the 2010 nova architecture."""

__version__ = "0.1.0"
