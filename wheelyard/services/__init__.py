"""Use cases, one function per verb, shared by the command line and the web layer."""
