"""Fakes that run over real protocols on 127.0.0.1 (never imported by phone_core)."""
