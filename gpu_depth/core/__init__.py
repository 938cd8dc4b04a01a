"""The depth model: pixel formats, mappings, metadata, DepthData, storage quantisation, XMP, orientation and
resampling.  Nothing here reads or writes files or knows a container."""
