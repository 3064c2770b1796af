"""Thin Faust agents: decode → load state → pure step (rules/, alerts/) → store → emit."""
