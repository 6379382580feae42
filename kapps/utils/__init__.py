"""Small helpers with one job each, shared by every part of kapps (no Keras imports here)."""
