"""Template tag libraries of the publisher: ``{% load websub %}``."""
