"""DNG: the TIFF IFD reader and appending writer, the plugin and its verify rules."""
