"""Blueprints: thin views that validate a form, call one service and render or redirect."""
