"""Test helpers: processes, clients, builders."""
