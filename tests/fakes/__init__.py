"""Typed fakes of GIMP's Python APIs (GIMP 3 ``gi.repository.Gimp``/``Gegl``, GIMP 2.10 ``gimpfu``) for tests."""
