"""Images of any size in bounded memory: compact pixel storage, O(batch) sampling,
tile-by-tile metrics and streaming writers."""
