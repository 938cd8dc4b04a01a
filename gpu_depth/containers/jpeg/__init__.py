"""JPEG: the segment parser, the MPF index, the lossless-JPEG codec, GDepth, the plugin and its verify rules."""
