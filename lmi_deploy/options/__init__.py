"""LMI options: one schema, its sources (serving.properties, environment), resolution and rendering."""
