"""HEIC/HEIF: the ISOBMFF box reader and writer, the depth SEI, the plugin and its verify rules."""
