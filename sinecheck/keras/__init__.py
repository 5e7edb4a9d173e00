"""The Keras runtime: which Keras and backend, seeding, model factories, user models and probes of ``fit``."""
